//! TEMP placeholder.
use std::collections::BTreeMap;
use super::pickle::PickleError;
#[derive(Clone, Debug)]
pub struct HostTensor { pub shape: Vec<usize>, pub data: Vec<f32> }
pub struct PickledModule { pub class_name: String, pub init_kwargs: serde_json::Value, pub init_args: Vec<serde_json::Value>, pub state_dict: BTreeMap<String, HostTensor> }
pub struct Snapshot { pub networks: BTreeMap<String, PickledModule>, pub training_set_kwargs: Option<serde_json::Value> }
pub fn parse_snapshot(_bytes: &[u8]) -> Result<Snapshot, PickleError> { Err(PickleError::Todo) }
