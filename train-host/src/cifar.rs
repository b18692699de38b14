//! Readers for the official CIFAR-10 and CIFAR-100 binary formats.
//!
//! A data path may be a folder holding the unpacked files (`cifar-10-batches-bin/…`,
//! `cifar-100-binary/…`, or the files themselves), a folder holding the official archives, or one
//! archive (`.tar.gz`, `.tgz`, `.tar.xz`, `.tar`). Archives are streamed, never unpacked to disk.
//! Where a `SHA256SUMS` list lies in that folder (or beside that archive), as it does beside the
//! archives this project is given, every image file read is checked against it.
use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

/// Bytes of one image: three 32 × 32 channel planes (R, G, B).
pub const IMAGE_LEN: usize = 3 * 32 * 32;

/// Which CIFAR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum Kind {
    /// 10 classes.
    #[value(name = "cifar10")]
    Cifar10,
    /// 100 fine classes.
    #[value(name = "cifar100")]
    Cifar100,
}

impl Kind {
    /// The dataset's value of `--dataset` (`cifar10`, `cifar100`), for commands written out.
    pub fn arg(self) -> String {
        crate::value_name(&self)
    }
    /// Number of classes.
    pub fn classes(self) -> usize {
        match self {
            Kind::Cifar10 => 10,
            Kind::Cifar100 => 100,
        }
    }
    /// The dataset of a model with this many classes.
    pub fn for_classes(n: usize) -> Option<Kind> {
        match n {
            10 => Some(Kind::Cifar10),
            100 => Some(Kind::Cifar100),
            _ => None,
        }
    }
    /// Per-channel mean and standard deviation used to normalise pixels (in [0, 1]).
    pub fn normalization(self) -> ([f32; 3], [f32; 3]) {
        match self {
            Kind::Cifar10 => ([0.4914, 0.4822, 0.4465], [0.247, 0.243, 0.261]),
            Kind::Cifar100 => ([0.5071, 0.4865, 0.4409], [0.2673, 0.2564, 0.2762]),
        }
    }
    fn folder(self) -> &'static str {
        match self {
            Kind::Cifar10 => "cifar-10-batches-bin",
            Kind::Cifar100 => "cifar-100-binary",
        }
    }
    fn files(self, split: Split) -> Vec<String> {
        match (self, split) {
            (Kind::Cifar10, Split::Train) => (1..=5).map(|i| format!("data_batch_{i}.bin")).collect(),
            (Kind::Cifar10, Split::Test) => vec!["test_batch.bin".into()],
            (Kind::Cifar100, Split::Train) => vec!["train.bin".into()],
            (Kind::Cifar100, Split::Test) => vec!["test.bin".into()],
        }
    }
    fn names_file(self) -> &'static str {
        match self {
            Kind::Cifar10 => "batches.meta.txt",
            Kind::Cifar100 => "fine_label_names.txt",
        }
    }
    /// Bytes of one record: label byte(s) then the image.
    fn record_len(self) -> usize {
        match self {
            Kind::Cifar10 => 1 + IMAGE_LEN,
            Kind::Cifar100 => 2 + IMAGE_LEN,
        }
    }
}

/// The dataset's name in text: `CIFAR-10`, `CIFAR-100`.
impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Cifar10 => "CIFAR-10",
            Kind::Cifar100 => "CIFAR-100",
        })
    }
}

/// Training or test images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// The 50,000 training images.
    Train,
    /// The 10,000 test images.
    Test,
}

/// Images and labels, in the official order.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Which CIFAR.
    pub kind: Kind,
    /// `IMAGE_LEN` bytes per image, channel planes.
    pub images: Vec<u8>,
    /// Class of each image.
    pub labels: Vec<u16>,
    /// Class names (from the label-names file; numbers if it is absent).
    pub names: Vec<String>,
}

impl Dataset {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    /// Image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.images[i * IMAGE_LEN..(i + 1) * IMAGE_LEN]
    }
    /// Keeps the first `n` images.
    pub fn truncate(&mut self, n: usize) {
        self.labels.truncate(n);
        self.images.truncate(n * IMAGE_LEN);
    }
    /// The images as records of a label byte then the image, the official CIFAR-10 binary layout:
    /// what the web demo sends for the page's accuracy measurement and what the microcontroller
    /// firmware (`tests/mcu`) reads.
    pub fn records(&self) -> Vec<u8> {
        (0..self.len()).flat_map(|i| std::iter::once(self.labels[i] as u8).chain(self.image(i).iter().copied())).collect()
    }
}

/// Why data could not be read.
#[derive(Debug)]
pub enum DataError {
    /// The path does not exist.
    NotFound(PathBuf),
    /// A required file is in neither the folder nor any archive there.
    Missing { file: String, searched: PathBuf },
    /// A file's size is not a whole number of records.
    Truncated { file: String, len: usize, record: usize },
    /// A file's SHA-256 is not the one the data folder's `SHA256SUMS` lists for it.
    Checksum { file: String, sums: PathBuf, listed: String, actual: String },
    /// A label byte is outside the class range.
    BadLabel { file: String, record: usize, label: u8, classes: usize },
    /// Reading failed.
    Io(PathBuf, io::Error),
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataError::NotFound(p) => write!(f, "data path {} does not exist", p.display()),
            DataError::Missing { file, searched } => {
                write!(f, "{file} not found in {} (expected the official binary files, unpacked or as .tar.gz/.tar.xz archives)", searched.display())
            }
            DataError::Truncated { file, len, record } => {
                write!(f, "{file} is truncated or not a CIFAR binary file: {len} bytes is not a multiple of the {record}-byte record")
            }
            DataError::Checksum { file, sums, listed, actual } => {
                write!(f, "{file} is damaged or not the file {} lists: its SHA-256 is {actual}, the list says {listed}", sums.display())
            }
            DataError::BadLabel { file, record, label, classes } => {
                write!(f, "{file}, record {record}: label {label} is outside 0..{classes} (mislabeled, or the other CIFAR's file)")
            }
            DataError::Io(p, e) => write!(f, "reading {}: {e}", p.display()),
        }
    }
}

impl std::error::Error for DataError {}

fn is_archive(p: &Path) -> bool {
    let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    [".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar"].iter().any(|s| n.ends_with(s))
}

fn open_archive(p: &Path) -> Result<tar::Archive<Box<dyn Read>>, DataError> {
    let file = File::open(p).map_err(|e| DataError::Io(p.into(), e))?;
    let buf = BufReader::with_capacity(1 << 20, file);
    let n = p.to_string_lossy();
    let reader: Box<dyn Read> = if n.ends_with(".gz") || n.ends_with(".tgz") {
        Box::new(flate2::read::GzDecoder::new(buf))
    } else if n.ends_with(".xz") || n.ends_with(".txz") {
        Box::new(liblzma::read::XzDecoder::new(buf))
    } else {
        Box::new(buf)
    };
    Ok(tar::Archive::new(reader))
}

/// Finds the files `names` (base names) under `path`; returns their bytes by name.
fn read_files(path: &Path, kind: Kind, names: &[String]) -> Result<HashMap<String, Vec<u8>>, DataError> {
    if !path.exists() {
        return Err(DataError::NotFound(path.into()));
    }
    let mut found = HashMap::new();
    let mut archives = Vec::new();
    if path.is_dir() {
        for name in names {
            for cand in [path.join(name), path.join(kind.folder()).join(name)] {
                if cand.is_file() {
                    found.insert(name.clone(), std::fs::read(&cand).map_err(|e| DataError::Io(cand.clone(), e))?);
                    break;
                }
            }
        }
        let mut entries: Vec<PathBuf> =
            std::fs::read_dir(path).map_err(|e| DataError::Io(path.into(), e))?.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| is_archive(p)).collect();
        entries.sort();
        // Scan this CIFAR's archives first, and no other CIFAR's.
        let other = match kind {
            Kind::Cifar10 => "cifar-100",
            Kind::Cifar100 => "cifar-10-",
        };
        archives.extend(entries.into_iter().filter(|p| !p.to_string_lossy().contains(other)));
    } else {
        archives.push(path.to_path_buf());
    }
    for archive in archives {
        if names.iter().all(|n| found.contains_key(n)) {
            break;
        }
        let mut ar = open_archive(&archive)?;
        let io_err = |e| DataError::Io(archive.clone(), e);
        for entry in ar.entries().map_err(io_err)? {
            let mut entry = entry.map_err(io_err)?;
            let name = entry.path().map_err(io_err)?.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string();
            if names.contains(&name) && !found.contains_key(&name) {
                let mut bytes = Vec::with_capacity(entry.size() as usize);
                entry.read_to_end(&mut bytes).map_err(io_err)?;
                found.insert(name, bytes);
                if names.iter().all(|n| found.contains_key(n)) {
                    break;
                }
            }
        }
    }
    Ok(found)
}

/// The checksum list of a data folder, in `sha256sum`'s format with paths as inside the archives.
const SUMS_FILE: &str = "SHA256SUMS";

/// The SHA-256 (lowercase hex) listed for each file in the `SHA256SUMS` of the folder `path`
/// names (or the folder of the archive it names), with that list's path; empty if there is none.
fn listed_sums(path: &Path) -> Result<(PathBuf, HashMap<String, String>), DataError> {
    let folder = if path.is_dir() { path } else { path.parent().unwrap_or(Path::new(".")) };
    let sums = folder.join(SUMS_FILE);
    let text = match std::fs::read_to_string(&sums) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(DataError::Io(sums, e)),
    };
    // `HASH  path` (text mode) or `HASH *path` (binary mode).
    let listed = text
        .lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(hash, file)| (file.trim_start_matches([' ', '*']).to_owned(), hash.to_ascii_lowercase()))
        .collect();
    Ok((sums, listed))
}

/// Lowercase hex SHA-256 of `bytes`, as `sha256sum` prints it.
fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Loads the test set of the CIFAR that `model` classifies (by its class count), keeping the
/// first `limit` images if given.
pub fn test_set_for(model: &cifhe_core::Model<'_>, path: &Path, limit: Option<usize>) -> Result<Dataset, String> {
    let kind = Kind::for_classes(model.classes()).ok_or_else(|| format!("the model has {} classes: neither CIFAR-10 nor CIFAR-100", model.classes()))?;
    let mut ds = load(path, kind, Split::Test).map_err(|e| e.to_string())?;
    if let Some(n) = limit {
        ds.truncate(n);
    }
    Ok(ds)
}

/// Loads a split of a CIFAR from `path`.
pub fn load(path: &Path, kind: Kind, split: Split) -> Result<Dataset, DataError> {
    let files = kind.files(split);
    let mut wanted = files.clone();
    wanted.push(kind.names_file().into());
    let mut found = read_files(path, kind, &wanted)?;
    let (sums, listed) = listed_sums(path)?;
    let mut ds = Dataset { kind, images: Vec::new(), labels: Vec::new(), names: Vec::new() };
    for file in &files {
        let bytes = found.remove(file).ok_or_else(|| DataError::Missing { file: file.clone(), searched: path.into() })?;
        let rec = kind.record_len();
        if bytes.is_empty() || bytes.len() % rec != 0 {
            return Err(DataError::Truncated { file: file.clone(), len: bytes.len(), record: rec });
        }
        if let Some(expected) = listed.get(&format!("{}/{file}", kind.folder())) {
            let actual = sha256_hex(&bytes);
            if &actual != expected {
                return Err(DataError::Checksum { file: file.clone(), sums, listed: expected.clone(), actual });
            }
        }
        ds.images.reserve(bytes.len() / rec * IMAGE_LEN);
        for (i, r) in bytes.chunks_exact(rec).enumerate() {
            let label = r[rec - IMAGE_LEN - 1]; // CIFAR-100: [coarse, fine, image]
            if label as usize >= kind.classes() {
                return Err(DataError::BadLabel { file: file.clone(), record: i, label, classes: kind.classes() });
            }
            ds.labels.push(label as u16);
            ds.images.extend_from_slice(&r[rec - IMAGE_LEN..]);
        }
    }
    ds.names = match found.remove(kind.names_file()) {
        Some(b) => String::from_utf8_lossy(&b).lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect(),
        None => Vec::new(),
    };
    if ds.names.len() != kind.classes() {
        ds.names = (0..kind.classes()).map(|k| format!("class {k}")).collect();
    }
    Ok(ds)
}
