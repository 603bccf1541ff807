//! Model options from TOML: every option of the model's Burn config, with its defaults.
//!
//! The table of `[model.equiformer]` (or `[model.schnet]`) is laid over the default
//! configuration key by key, so that any option of the model crate can be set from a file and
//! new options need no change here; a key the model does not have is an error that names it.

use equi_nn::schnet::SchNetConfig;
use equi_nn::EquiformerConfig;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{ForceSource, KeyError, ModelSpec, TaskConfig};
use crate::data::{MOLECULE_TOKENS, PROTEIN_TOKENS};

/// The model of a run, its configuration completed for the task.
#[derive(Clone, Debug)]
pub enum ModelChoice {
    /// An Equiformer with `reduce_dim_out` (one scalar and one vector output per atom).
    Equiformer(Box<EquiformerConfig>),
    /// SchNet with one output per structure.
    SchNet(SchNetConfig),
}

impl ModelChoice {
    /// Builds the model configuration of `spec` for `task`.
    pub(super) fn from_spec(spec: &ModelSpec, task: &TaskConfig) -> Result<Self, KeyError> {
        match spec {
            ModelSpec::Equiformer(table) => {
                equiformer(table, task).map(|c| Self::Equiformer(Box::new(c)))
            }
            ModelSpec::Schnet(table) => schnet(table, task).map(Self::SchNet),
        }
    }

    /// Short name of the model kind.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Equiformer(_) => "equiformer",
            Self::SchNet(_) => "schnet",
        }
    }

    /// Whether the model has a degree-1 (vector) output per atom.
    pub fn has_vector_output(&self) -> bool {
        matches!(self, Self::Equiformer(c) if c.num_degrees >= 2)
    }
}

fn equiformer(table: &toml::Table, task: &TaskConfig) -> Result<EquiformerConfig, KeyError> {
    const PREFIX: &str = "model.equiformer";
    let key = |name: &str| format!("{PREFIX}.{name}");
    let mut config = overlay(&EquiformerConfig::new(Vec::new()), table, PREFIX, &["dim"])?;
    if table.get("reduce_dim_out").and_then(toml::Value::as_bool) == Some(false) {
        return Err((
            key("reduce_dim_out"),
            "must be true: the tasks read one scalar and one vector output per atom".into(),
        ));
    }
    config.reduce_dim_out = true;
    if config.input_degrees != 1 {
        return Err((
            key("input_degrees"),
            "must be 1: the tasks give token inputs only".into(),
        ));
    }
    let vocabulary = match task {
        TaskConfig::Denoise(_) => PROTEIN_TOKENS,
        _ => MOLECULE_TOKENS,
    };
    match config.num_tokens {
        None => config.num_tokens = Some(vocabulary),
        Some(n) if n < vocabulary => {
            return Err((
                key("num_tokens"),
                format!("must be at least {vocabulary} for this task (or left out), got {n}"),
            ))
        }
        Some(_) => {}
    }
    let needs_vectors = match task {
        TaskConfig::Denoise(_) => Some("the denoise task predicts vectors"),
        TaskConfig::EnergyForces(e) if e.forces == ForceSource::Direct => {
            Some("direct forces are the degree-1 output")
        }
        _ => None,
    };
    if let Some(reason) = needs_vectors {
        if config.num_degrees < 2 {
            return Err((key("num_degrees"), format!("must be at least 2: {reason}")));
        }
    }
    Ok(config)
}

fn schnet(table: &toml::Table, task: &TaskConfig) -> Result<SchNetConfig, KeyError> {
    const PREFIX: &str = "model.schnet";
    let mut config = overlay(&SchNetConfig::new(), table, PREFIX, &[])?;
    if table.contains_key("out_channels") {
        return Err((
            format!("{PREFIX}.out_channels"),
            "is set by the task (one output per structure)".into(),
        ));
    }
    config.out_channels = 1;
    match task {
        TaskConfig::Denoise(_) => Err((
            PREFIX.into(),
            "SchNet is invariant and cannot predict the noise vectors of the denoise task; \
             use [model.equiformer]"
                .into(),
        )),
        TaskConfig::EnergyForces(e) if e.forces == ForceSource::Direct => Err((
            "task.energy_forces.forces".into(),
            "SchNet has no vector output: set forces = \"gradient\" and forces_weight = 0".into(),
        )),
        _ => {
            config
                .validate()
                .map_err(|e| (PREFIX.to_owned(), e.to_string()))?;
            Ok(config)
        }
    }
}

/// Lays `table` over the serialised `base`, refusing keys that `base` does not have and
/// requiring `required`; errors name the key under `prefix`.
pub(crate) fn overlay<C: Serialize + DeserializeOwned>(
    base: &C,
    table: &toml::Table,
    prefix: &str,
    required: &[&str],
) -> Result<C, KeyError> {
    let internal = |message: String| (prefix.to_owned(), message);
    let serde_json::Value::Object(mut fields) =
        serde_json::to_value(base).map_err(|e| internal(e.to_string()))?
    else {
        return Err(internal("the model configuration is not a table".into()));
    };
    for (name, value) in table {
        let key = format!("{prefix}.{name}");
        let Some(default) = fields.get(name) else {
            let known: Vec<&str> = fields.keys().map(String::as_str).collect();
            return Err((
                key,
                format!("unknown key; expected one of {}", known.join(", ")),
            ));
        };
        let mut value = serde_json::to_value(value).map_err(|e| (key.clone(), e.to_string()))?;
        // One number stands for "the same for every degree" in per-degree lists.
        if default.is_array() && value.is_number() {
            value = serde_json::Value::Array(vec![value]);
        }
        fields.insert(name.clone(), value);
    }
    if let Some(missing) = required.iter().find(|name| !table.contains_key(**name)) {
        return Err((format!("{prefix}.{missing}"), "missing key".into()));
    }
    serde_path_to_error::deserialize(serde_json::Value::Object(fields)).map_err(|e| {
        let path = e.path().to_string();
        (format!("{prefix}.{path}"), e.into_inner().to_string())
    })
}
