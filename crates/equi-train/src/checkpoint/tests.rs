use super::*;

fn sample(step: usize) -> Checkpoint {
    Checkpoint {
        meta: CheckpointMeta {
            config_text: "[run]\ndir = \"x\"\n".into(),
            config_dir: PathBuf::from("/configs"),
            normalizer: Normalizer::scaled(2.0),
            progress: Progress {
                seed: 7,
                epoch: 1,
                batch: 0,
                step,
                epoch_loss_sum: 0.0,
                elapsed_s: 3.5,
            },
            history: Vec::new(),
        },
        model: vec![1, 2, 3, step as u8],
        optimizer: vec![9; 17],
    }
}

#[test]
fn round_trip_and_damage_detection() {
    let bytes = sample(4).encode().expect("encode");
    let decoded = Checkpoint::decode(&bytes).expect("decode");
    assert_eq!(decoded.meta, sample(4).meta);
    assert_eq!(
        (decoded.model, decoded.optimizer),
        (sample(4).model, sample(4).optimizer)
    );

    let mut flipped = bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x40;
    assert!(Checkpoint::decode(&flipped)
        .unwrap_err()
        .contains("checksum"));
    let truncated = &bytes[..bytes.len() - 5];
    assert!(Checkpoint::decode(truncated)
        .unwrap_err()
        .contains("truncated"));
    assert!(Checkpoint::decode(b"PK\x03\x04 a zip file")
        .unwrap_err()
        .contains("not a checkpoint"));
    let mut future = bytes.clone();
    future[8] = 9;
    assert!(Checkpoint::decode(&future)
        .unwrap_err()
        .contains("version 9"));
}

#[test]
fn a_crash_between_write_and_rename_keeps_the_previous_checkpoint() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let path = folder.path().join(step_file_name(4));
    write_atomic(&path, &sample(4).encode().expect("encode")).expect("first write");

    // The next save of the same file is written and flushed, then the process dies before
    // the rename: simulated by staging without committing.
    let staged = stage(&path, &sample(8).encode().expect("encode")).expect("staged");
    assert!(staged.exists());
    let kept = Checkpoint::read(&path).expect("previous checkpoint intact");
    assert_eq!(kept.meta.progress.step, 4);

    // A partially written temporary file is never listed nor read.
    std::fs::write(folder.path().join(".step-000000012.ckpt.tmp-1"), b"EQFCK").expect("junk");
    let listed: Vec<usize> = list(folder.path())
        .expect("list")
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(listed, vec![4]);
    let (found, checkpoint) = locate(folder.path()).expect("latest");
    assert_eq!((found, checkpoint.meta.progress.step), (path.clone(), 4));
    remove_leftovers(folder.path());
    let names: Vec<String> = std::fs::read_dir(folder.path())
        .expect("read folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec![step_file_name(4)]);

    // Committing the staged file replaces the checkpoint in one step.
    let staged = stage(&path, &sample(8).encode().expect("encode")).expect("staged");
    commit(&staged, &path).expect("rename");
    assert_eq!(Checkpoint::read(&path).expect("new").meta.progress.step, 8);
}

#[test]
fn locating_skips_damaged_checkpoints_and_pruning_keeps_the_latest() {
    let folder = tempfile::tempdir().expect("temporary folder");
    for step in [2, 4, 6] {
        let path = folder.path().join(step_file_name(step));
        write_atomic(&path, &sample(step).encode().expect("encode")).expect("write");
    }
    std::fs::write(folder.path().join(step_file_name(6)), b"garbage").expect("damage");
    let (path, checkpoint) = locate(folder.path()).expect("an intact one");
    assert_eq!(checkpoint.meta.progress.step, 4);
    assert!(path.ends_with(step_file_name(4)));
    let error = Checkpoint::read(&folder.path().join(step_file_name(6))).unwrap_err();
    assert!(error.to_string().contains("not a checkpoint"), "{error}");

    prune(folder.path(), 2).expect("prune");
    let steps: Vec<usize> = list(folder.path())
        .expect("list")
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(steps, vec![6, 4]);
    let empty = tempfile::tempdir().expect("temporary folder");
    let error = locate(empty.path()).unwrap_err().to_string();
    assert!(error.contains("no checkpoint files"), "{error}");
}
