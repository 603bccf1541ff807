//! The `equiformer` program on bad input, table-driven: every case must end with exit code 1,
//! one line on standard error that names the culprit file, no panic, no hang, and nothing at
//! the output path. Valid edge cases (one atom, coincident atoms, an atom without
//! neighbours) are in a second table with their documented finite result.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use equi_train::io::extxyz::read_extxyz;

/// The longest any single command may take before the test calls it a hang.
const HANG: Duration = Duration::from_secs(180);

/// A fresh folder under the system's temporary folder, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "equiformer-robustness-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create scratch folder");
        Scratch(path)
    }

    fn file(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write scratch file");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the program with `arguments`, killing it (and failing) after [`HANG`].
fn equiformer(arguments: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_equiformer"))
        .args(arguments)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the equiformer program starts");
    let start = Instant::now();
    while child.try_wait().expect("wait for the program").is_none() {
        if start.elapsed() > HANG {
            let _ = child.kill();
            panic!("`equiformer {}` hung", arguments.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("the program's output")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The first `count` frames of the bundled ethanol training file.
fn ethanol_frames(count: usize) -> String {
    let path = repository().join("data/md/ethanol_xtb_train.extxyz");
    let text = std::fs::read_to_string(path).expect("bundled ethanol");
    text.lines()
        .take(count * 11)
        .map(|l| format!("{l}\n"))
        .collect()
}

/// One ethanol frame with the line of atom `atom` (0-based) replaced by `line`.
fn ethanol_with_atom_line(atom: usize, line: &str) -> String {
    let mut lines: Vec<String> = ethanol_frames(1).lines().map(str::to_owned).collect();
    lines[2 + atom] = line.to_owned();
    lines.join("\n") + "\n"
}

/// One ethanol frame with its comment line passed through `edit`.
fn ethanol_with_comment(edit: impl Fn(&str) -> String) -> String {
    let mut lines: Vec<String> = ethanol_frames(1).lines().map(str::to_owned).collect();
    lines[1] = edit(&lines[1]);
    lines.join("\n") + "\n"
}

/// A tiny energy/forces run on ten ethanol frames (direct forces: one epoch in seconds).
fn energy_config(scratch: &Scratch, data: &Path) -> String {
    format!(
        r#"
[run]
dir = "{run}"
seed = 1

[model.equiformer]
dim = 4
heads = 1
dim_head = 4
depth = 1
num_neighbors = 8
radial_hidden_dim = 8
num_radial_basis = 8
valid_radius = 5.0
radial_basis_cutoff = 5.0

[task.energy_forces]
forces = "direct"

[data]
train = ["{data}"]
valid = ["{data}"]

[training]
epochs = 1
batch_size = 5
"#,
        run = scratch.0.join("run").display(),
        data = data.display()
    )
}

/// A bad input: the command's arguments, the fragment its error must name, and the output
/// path that must not appear.
struct Case {
    what: &'static str,
    arguments: Vec<String>,
    fragment: String,
    output: Option<PathBuf>,
}

/// What is wrong with the program's answer to `case`, if anything.
fn refusal_problem(case: &Case) -> Option<String> {
    let arguments: Vec<&str> = case.arguments.iter().map(String::as_str).collect();
    let output = equiformer(&arguments);
    let stderr = text(&output.stderr);
    let what = case.what;
    if output.status.code() != Some(1) {
        return Some(format!(
            "{what}: exit {:?}, stderr {stderr}",
            output.status.code()
        ));
    }
    if stderr.lines().count() != 1 || !stderr.starts_with("error: ") {
        return Some(format!("{what}: not a one-line error: {stderr}"));
    }
    if !stderr.contains(&case.fragment) {
        return Some(format!(
            "{what}: the error does not name {:?}: {stderr}",
            case.fragment
        ));
    }
    if stderr.contains("panicked") || stderr.contains("backtrace") {
        return Some(format!("{what}: a panic: {stderr}"));
    }
    match &case.output {
        Some(path) if path.exists() => Some(format!("{what}: {} was written", path.display())),
        _ => None,
    }
}

#[test]
fn bad_input_is_refused_in_one_line_naming_the_file() {
    let scratch = Scratch::new("bad");
    let train_data = scratch.file("train.extxyz", ethanol_frames(10));
    let config = scratch.file("energy.toml", energy_config(&scratch, &train_data));
    let trained = equiformer(&["train", "--config", &config.to_string_lossy()]);
    assert!(trained.status.success(), "{}", text(&trained.stderr));
    let run = scratch.0.join("run");
    let checkpoint = run.join("checkpoints/best.ckpt");
    let checkpoint_bytes = std::fs::read(&checkpoint).expect("a checkpoint");
    let run = run.to_string_lossy().into_owned();

    let output = scratch.0.join("predicted.extxyz");
    let predict = |input: &Path| Case {
        what: "",
        arguments: [
            "predict",
            "--checkpoint",
            &run,
            "--input",
            &input.to_string_lossy(),
            "--output",
            &output.to_string_lossy(),
        ]
        .map(str::to_owned)
        .to_vec(),
        fragment: input.file_name().unwrap().to_string_lossy().into_owned(),
        output: Some(output.clone()),
    };
    let eval = |input: &Path| Case {
        what: "",
        arguments: [
            "eval",
            "--checkpoint",
            &run,
            "--data",
            &input.to_string_lossy(),
        ]
        .map(str::to_owned)
        .to_vec(),
        fragment: input.file_name().unwrap().to_string_lossy().into_owned(),
        output: None,
    };
    let train = |config: &Path| Case {
        what: "",
        arguments: ["train", "--config", &config.to_string_lossy()]
            .map(str::to_owned)
            .to_vec(),
        fragment: config.file_name().unwrap().to_string_lossy().into_owned(),
        output: None,
    };
    let with_checkpoint = |checkpoint: &Path| Case {
        what: "",
        arguments: [
            "predict",
            "--checkpoint",
            &checkpoint.to_string_lossy(),
            "--input",
            &train_data.to_string_lossy(),
            "--output",
            &output.to_string_lossy(),
        ]
        .map(str::to_owned)
        .to_vec(),
        fragment: checkpoint
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned(),
        output: Some(output.clone()),
    };
    let named = |what: &'static str, case: Case| Case { what, ..case };
    let good_config = energy_config(&scratch, &train_data);
    let bad_config = |name: &str, text: String| scratch.file(name, text);
    let ethanol = ethanol_frames(1);
    let mut binary = vec![0u8, 159, 146, 150, 0, 255, 1, 2, 3];
    binary.extend(std::iter::repeat_n(0u8, 64));
    let proteins = repository().join("data/proteins");
    let dcd = std::fs::read(proteins.join("adk_dims.dcd")).expect("bundled trajectory");
    let truncated_dcd = scratch.file("truncated.dcd", &dcd[..dcd.len() / 3 + 7]);
    let dcd_config = scratch.file(
        "denoise_dcd.toml",
        format!(
            "[run]\ndir = \"{run}\"\n[model.equiformer]\ndim = 4\nheads = 1\ndim_head = 4\n\
             depth = 1\nnum_neighbors = 6\n[task.denoise]\ncrop_residues = 8\n[data]\n\
             train = [\"{peptide}\"]\ntrain_trajectories = [{{ dcd = \"{dcd}\", topology = \
             \"{topology}\", stride = 49 }}]\nvalid = [\"{peptide}\"]\n[training]\nepochs = 1\n",
            run = scratch.0.join("dcd_run").display(),
            peptide = proteins.join("1grm_single.pdb").display(),
            dcd = truncated_dcd.display(),
            topology = proteins.join("adk_open.pdb").display(),
        ),
    );

    let cases = vec![
        named("missing file", predict(&scratch.0.join("absent.extxyz"))),
        named("empty file", predict(&scratch.file("empty.extxyz", ""))),
        named(
            "truncated file",
            predict(&scratch.file("truncated.extxyz", &ethanol[..ethanol.len() / 2])),
        ),
        named(
            "not UTF-8",
            predict(&scratch.file("latin1.extxyz", b"9\ncaf\xe9\n")),
        ),
        named(
            "binary file",
            predict(&scratch.file("binary.extxyz", &binary)),
        ),
        named(
            "NaN position",
            predict(&scratch.file(
                "nan.extxyz",
                ethanol_with_atom_line(3, "H NaN 0.0 0.0 0.0 0.0 0.0"),
            )),
        ),
        named(
            "infinite position",
            predict(&scratch.file(
                "inf.extxyz",
                ethanol_with_atom_line(3, "H inf 0.0 0.0 0.0 0.0 0.0"),
            )),
        ),
        named(
            "huge coordinates",
            predict(&scratch.file(
                "huge.extxyz",
                ethanol_with_atom_line(3, "H 1e30 0.0 0.0 0.0 0.0 0.0"),
            )),
        ),
        named(
            "NaN energy label",
            eval(&scratch.file(
                "nan_energy.extxyz",
                ethanol_with_comment(|c| c.replace("energy=-309.4711397718", "energy=nan")),
            )),
        ),
        named(
            "infinite force label",
            eval(&scratch.file(
                "inf_force.extxyz",
                ethanol_with_atom_line(3, "H 0.5 0.5 0.5 inf 0.0 0.0"),
            )),
        ),
        named(
            "atom count larger than the atoms",
            predict(&scratch.file("count.extxyz", ethanol.replacen("9\n", "12\n", 1))),
        ),
        named(
            "atom count not a number",
            predict(&scratch.file("word.extxyz", ethanol.replacen("9\n", "nine\n", 1))),
        ),
        named(
            "Properties with too few columns",
            predict(&scratch.file(
                "properties.extxyz",
                ethanol_with_comment(|c| c.replace("pos:R:3", "pos:R:2")),
            )),
        ),
        named(
            "unknown element",
            predict(&scratch.file(
                "element.extxyz",
                ethanol_with_atom_line(3, "Xq 0.5 0.5 0.5 0.0 0.0 0.0"),
            )),
        ),
        named(
            "singular lattice",
            predict(&scratch.file(
                "lattice.extxyz",
                ethanol_with_comment(|c| {
                    c.replace(
                        "pbc=\"F F F\"",
                        "Lattice=\"1 0 0 2 0 0 0 0 1\" pbc=\"T T T\"",
                    )
                }),
            )),
        ),
        named(
            "pbc without a lattice",
            predict(&scratch.file(
                "pbc.extxyz",
                ethanol_with_comment(|c| c.replace("pbc=\"F F F\"", "pbc=\"T T T\"")),
            )),
        ),
        named("truncated DCD", train(&dcd_config)),
        named(
            "corrupt checkpoint",
            with_checkpoint(&scratch.file("corrupt.ckpt", &binary)),
        ),
        named(
            "truncated checkpoint",
            with_checkpoint(&scratch.file(
                "truncated.ckpt",
                &checkpoint_bytes[..checkpoint_bytes.len() / 2],
            )),
        ),
        named(
            "a PDB file for an energy checkpoint (another task's input)",
            predict(&proteins.join("1grm_single.pdb")),
        ),
        named(
            "bad TOML value",
            train(&bad_config(
                "value.toml",
                good_config.replace("batch_size = 5", "batch_size = 0"),
            )),
        ),
        named(
            "unknown TOML key",
            train(&bad_config(
                "key.toml",
                good_config.replace("depth = 1", "depth = 1\ndepht = 2"),
            )),
        ),
        named(
            "TOML syntax",
            train(&bad_config(
                "syntax.toml",
                good_config.replace("[run]", "[run"),
            )),
        ),
    ];
    assert!(cases.len() >= 20);
    let problems: Vec<String> = cases.iter().filter_map(refusal_problem).collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        !scratch.0.join("dcd_run/checkpoints/best.ckpt").exists(),
        "a run on a truncated trajectory wrote a checkpoint"
    );
}

/// Valid edge cases: each is predicted with exit code 0 and finite values.
#[test]
fn edge_cases_give_their_documented_finite_result() {
    let scratch = Scratch::new("edge");
    let train_data = scratch.file("train.extxyz", ethanol_frames(10));
    let config = scratch.file("energy.toml", energy_config(&scratch, &train_data));
    let trained = equiformer(&["train", "--config", &config.to_string_lossy()]);
    assert!(trained.status.success(), "{}", text(&trained.stderr));
    let run = scratch.0.join("run").to_string_lossy().into_owned();

    let one_atom = "1\nProperties=species:S:1:pos:R:3\nC 0.0 0.0 0.0\n".to_owned();
    let coincident_line = ethanol_frames(1).lines().nth(5).unwrap().to_owned();
    let coincident = ethanol_with_atom_line(4, &coincident_line);
    let isolated = ethanol_with_atom_line(8, "H 40.0 40.0 40.0 0.0 0.0 0.0");
    // Documented results: a lone atom has no neighbours and gets its element's reference
    // energy and zero force; coincident atoms are a valid (if unphysical) input of a direct
    // force head; an atom beyond every cutoff gets zero force.
    for (name, input, zero_force_atom) in [
        ("one_atom.extxyz", one_atom, Some(0)),
        ("coincident.extxyz", coincident, None),
        ("isolated.extxyz", isolated, Some(8)),
    ] {
        let input = scratch.file(name, input);
        let output = scratch.0.join(format!("predicted_{name}"));
        let predicted = equiformer(&[
            "predict",
            "--checkpoint",
            &run,
            "--input",
            &input.to_string_lossy(),
            "--output",
            &output.to_string_lossy(),
        ]);
        assert!(
            predicted.status.success(),
            "{name}: {}",
            text(&predicted.stderr)
        );
        let frames = read_extxyz(&output).expect("predictions read back");
        let energy = frames[0].info_f64("energy").expect("an energy");
        assert!(energy.is_finite(), "{name}: energy {energy}");
        let forces = frames[0].vectors("forces").expect("forces");
        assert!(
            forces.iter().flatten().all(|f| f.is_finite()),
            "{name}: {forces:?}"
        );
        if let Some(atom) = zero_force_atom {
            assert!(
                forces[atom].iter().all(|f| f.abs() < 1e-9),
                "{name}: force on the lone atom {:?}",
                forces[atom]
            );
        }
    }
}
