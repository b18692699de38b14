//! Reading a compiled model file, with errors that name the file.
use cifhe_core::Model;
use std::path::Path;

/// The bytes of the model file at `path`.
pub fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read model {}: {e}", path.display()))
}

/// The model in `bytes`, read from `path` (a corrupt or foreign file is reported under its path).
pub fn open<'a>(path: &Path, bytes: &'a [u8]) -> Result<Model<'a>, String> {
    Model::from_bytes(bytes).map_err(|e| format!("{}: {e}", path.display()))
}
