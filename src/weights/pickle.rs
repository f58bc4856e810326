//! TEMP placeholder until the pickle machine lands.
#[derive(Debug, thiserror::Error)]
pub enum PickleError {
    #[error("not implemented")]
    Todo,
}
