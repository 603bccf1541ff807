//! Checks of a parsed configuration: value ranges, kinds of data files, their existence, and
//! the resolution of relative paths.

use std::path::{Path, PathBuf};

use super::{ForceSource, KeyError, RunConfig, TaskConfig};

/// `path` with `.` components dropped and `dir/..` pairs removed, without touching the disk.
fn lexically_clean(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(clean.components().next_back(), Some(Component::Normal(_))) =>
            {
                clean.pop();
            }
            other => clean.push(other),
        }
    }
    clean
}

fn check_file(key: String, path: &Path) -> Result<(), KeyError> {
    if path.is_file() {
        Ok(())
    } else {
        Err((key, format!("data file not found: {}", path.display())))
    }
}

impl RunConfig {
    pub(super) fn resolve_paths(&mut self, base: &Path) {
        let resolve = |path: &mut PathBuf| *path = lexically_clean(&base.join(&*path));
        resolve(&mut self.run.dir);
        let data = &mut self.data;
        data.train
            .iter_mut()
            .chain(data.valid.iter_mut())
            .for_each(resolve);
        for trajectory in data
            .train_trajectories
            .iter_mut()
            .chain(data.valid_trajectories.iter_mut())
        {
            resolve(&mut trajectory.dcd);
            resolve(&mut trajectory.topology);
        }
    }

    pub(super) fn check(&self) -> Result<(), KeyError> {
        let positive = |key: &str, ok: bool, what: &str| {
            if ok {
                Ok(())
            } else {
                Err((key.to_owned(), what.to_owned()))
            }
        };
        let t = &self.training;
        positive("training.epochs", t.epochs >= 1, "must be at least 1")?;
        positive(
            "training.batch_size",
            t.batch_size >= 1,
            "must be at least 1",
        )?;
        positive(
            "training.valid_batch_size",
            t.valid_batch_size != Some(0),
            "must be at least 1",
        )?;
        positive(
            "training.checkpoint_every_steps",
            t.checkpoint_every_steps != Some(0),
            "must be at least 1",
        )?;
        positive(
            "training.keep_checkpoints",
            t.keep_checkpoints >= 1,
            "must be at least 1",
        )?;
        positive(
            "training.devices",
            t.devices.as_ref().is_none_or(|d| !d.is_empty()),
            "must name at least one device (leave it out for the default device)",
        )?;
        let o = &self.optimizer;
        positive(
            "optimizer.lr",
            o.lr.is_finite() && o.lr > 0.0,
            "must be positive",
        )?;
        positive(
            "optimizer.beta_1",
            (0.0..1.0).contains(&o.beta_1),
            "must lie in [0, 1)",
        )?;
        positive(
            "optimizer.beta_2",
            (0.0..1.0).contains(&o.beta_2),
            "must lie in [0, 1)",
        )?;
        positive("optimizer.epsilon", o.epsilon > 0.0, "must be positive")?;
        positive(
            "optimizer.weight_decay",
            o.weight_decay >= 0.0,
            "must not be negative",
        )?;
        positive(
            "optimizer.grad_clip_norm",
            o.grad_clip_norm.is_none_or(|c| c > 0.0),
            "must be positive",
        )?;
        let s = &self.schedule;
        positive(
            "schedule.min_lr",
            s.min_lr >= 0.0 && s.min_lr <= o.lr,
            "must lie in [0, optimizer.lr]",
        )?;
        self.check_task()?;
        self.check_data()
    }

    fn check_task(&self) -> Result<(), KeyError> {
        match &self.task {
            TaskConfig::Denoise(d) => {
                if !(d.noise_sigma.is_finite() && d.noise_sigma > 0.0) {
                    return Err(("task.denoise.noise_sigma".into(), "must be positive".into()));
                }
            }
            TaskConfig::Property(p) => {
                if p.property.is_empty() {
                    return Err((
                        "task.property.property".into(),
                        "must name a property".into(),
                    ));
                }
            }
            TaskConfig::EnergyForces(e) => {
                let key = "task.energy_forces";
                if !(e.energy_weight >= 0.0 && e.forces_weight >= 0.0 && e.stress_weight >= 0.0) {
                    return Err((
                        format!("{key}.energy_weight"),
                        "weights must not be negative".into(),
                    ));
                }
                if e.energy_weight + e.forces_weight <= 0.0 {
                    return Err((
                        format!("{key}.forces_weight"),
                        "one weight must be positive".into(),
                    ));
                }
                if e.stress_weight > 0.0 && e.forces != ForceSource::Conservative {
                    return Err((
                        format!("{key}.stress_weight"),
                        "stress is learned with forces = \"conservative\" only".into(),
                    ));
                }
                if e.max_images == 0 {
                    return Err((format!("{key}.max_images"), "must be positive".into()));
                }
                if e.forces == ForceSource::Gradient && e.forces_weight > 0.0 {
                    return Err((
                        format!("{key}.forces_weight"),
                        "must be 0 with forces = \"gradient\": Burn has no double backward, so \
                         gradient forces are not trained by backpropagation; use forces = \
                         \"conservative\" (trained as derivatives) or \"direct\""
                            .into(),
                    ));
                }
            }
        }
        Ok(())
    }

    fn check_data(&self) -> Result<(), KeyError> {
        let d = &self.data;
        if d.train.is_empty() && d.train_trajectories.is_empty() {
            return Err(("data.train".into(), "no training files given".into()));
        }
        if !(d.valid_fraction > 0.0 && d.valid_fraction < 1.0) {
            return Err(("data.valid_fraction".into(), "must lie in (0, 1)".into()));
        }
        let is_protein = matches!(self.task, TaskConfig::Denoise(_));
        for (name, files) in [("train", &d.train), ("valid", &d.valid)] {
            for (i, path) in files.iter().enumerate() {
                let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
                let extension = extension.to_ascii_lowercase();
                let fits = if is_protein {
                    extension == "pdb"
                } else {
                    extension == "xyz" || extension == "extxyz"
                };
                if !fits {
                    let expected = if is_protein {
                        "a .pdb file for the denoise task"
                    } else {
                        "an extended XYZ file (.xyz or .extxyz)"
                    };
                    return Err((
                        format!("data.{name}[{i}]"),
                        format!("expected {expected}: {}", path.display()),
                    ));
                }
            }
        }
        for (name, list) in [
            ("train_trajectories", &d.train_trajectories),
            ("valid_trajectories", &d.valid_trajectories),
        ] {
            for (i, trajectory) in list.iter().enumerate() {
                let key = format!("data.{name}[{i}]");
                if !is_protein {
                    return Err((key, "trajectories are read by the denoise task only".into()));
                }
                if trajectory.stride == 0 {
                    return Err((format!("{key}.stride"), "must be at least 1".into()));
                }
            }
        }
        Ok(())
    }

    /// Checks that every data file exists.
    pub(super) fn check_files(&self) -> Result<(), KeyError> {
        let d = &self.data;
        for (name, files) in [("train", &d.train), ("valid", &d.valid)] {
            for (i, path) in files.iter().enumerate() {
                check_file(format!("data.{name}[{i}]"), path)?;
            }
        }
        for (name, list) in [
            ("train_trajectories", &d.train_trajectories),
            ("valid_trajectories", &d.valid_trajectories),
        ] {
            for (i, trajectory) in list.iter().enumerate() {
                check_file(format!("data.{name}[{i}].dcd"), &trajectory.dcd)?;
                check_file(format!("data.{name}[{i}].topology"), &trajectory.topology)?;
            }
        }
        Ok(())
    }
}
