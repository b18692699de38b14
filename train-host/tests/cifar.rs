//! The CIFAR readers on the real files (`$CIFHE_DATA` or ../shared/data) and on broken ones.
use std::path::PathBuf;
use train_host::cifar::{load, DataError, Kind, Split, IMAGE_LEN};
use train_host::paths::default_data;

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cifhe-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn reads_the_official_test_sets_from_the_archives() {
    let c10 = load(&default_data(), Kind::Cifar10, Split::Test).expect("CIFAR-10 test set");
    assert_eq!((c10.len(), c10.images.len()), (10_000, 10_000 * IMAGE_LEN));
    assert_eq!(c10.names[0], "airplane");
    assert_eq!(c10.names[9], "truck");
    // The official test set: first labels cat, ship, ship, airplane; 1000 images a class.
    assert_eq!(&c10.labels[..4], &[3, 8, 8, 0]);
    assert!((0..10).all(|k| c10.labels.iter().filter(|&&l| l == k).count() == 1000));
    let c100 = load(&default_data(), Kind::Cifar100, Split::Test).expect("CIFAR-100 test set");
    assert_eq!(c100.len(), 10_000);
    assert_eq!(c100.names.len(), 100);
    assert_eq!(c100.names[0], "apple");
    assert!((0..100).all(|k| c100.labels.iter().filter(|&&l| l == k).count() == 100));
}

#[test]
fn reads_an_unpacked_folder_and_refuses_broken_files() {
    let dir = temp_dir("cifar");
    let err = load(&dir.join("nope"), Kind::Cifar10, Split::Test).unwrap_err();
    assert!(matches!(err, DataError::NotFound(_)), "{err}");
    let err = load(&dir, Kind::Cifar10, Split::Test).unwrap_err();
    assert!(err.to_string().contains("test_batch.bin not found"), "{err}");

    // Two good records, unpacked in the official folder name.
    let folder = dir.join("cifar-10-batches-bin");
    std::fs::create_dir_all(&folder).unwrap();
    let mut rec = vec![7u8];
    rec.extend((0..IMAGE_LEN).map(|i| i as u8));
    let two = [rec.clone(), rec.clone()].concat();
    std::fs::write(folder.join("test_batch.bin"), &two).unwrap();
    let ds = load(&dir, Kind::Cifar10, Split::Test).unwrap();
    assert_eq!((ds.len(), ds.labels[1], ds.image(1)[5]), (2, 7, 5));

    // A checksum list beside the files is honoured: the file it lists must hash as listed.
    use sha2::Digest;
    let hash: String = sha2::Sha256::digest(&two).iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(dir.join("SHA256SUMS"), format!("{hash}  cifar-10-batches-bin/test_batch.bin\n")).unwrap();
    assert_eq!(load(&dir, Kind::Cifar10, Split::Test).unwrap().len(), 2);
    let other = format!("{}0", &hash[..63]);
    std::fs::write(dir.join("SHA256SUMS"), format!("{other} *cifar-10-batches-bin/test_batch.bin\n")).unwrap();
    let err = load(&dir, Kind::Cifar10, Split::Test).unwrap_err();
    assert!(matches!(&err, DataError::Checksum { file, listed, actual, .. } if file == "test_batch.bin" && *listed == other && *actual == hash), "{err}");
    assert!(err.to_string().contains("test_batch.bin is damaged or not the file"), "{err}");
    std::fs::remove_file(dir.join("SHA256SUMS")).unwrap();

    std::fs::write(folder.join("test_batch.bin"), &two[..two.len() - 100]).unwrap();
    let err = load(&dir, Kind::Cifar10, Split::Test).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");

    let mut bad = two.clone();
    bad[IMAGE_LEN + 1] = 42;
    std::fs::write(folder.join("test_batch.bin"), &bad).unwrap();
    let err = load(&dir, Kind::Cifar10, Split::Test).unwrap_err();
    assert!(err.to_string().contains("record 1: label 42"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// CIFAR-100 comes in two archives that unpack into the same folder; the training one is to be
/// added beside the test one in ../shared/data. Both are read where they lie (the labels' names
/// from the test archive), with CIFAR-10's archive beside them, so `--data ../shared/data` works
/// the day it arrives. The training archive here is made like the official one: an xz-compressed
/// tar holding `cifar-100-binary/train.bin`, records of coarse label, fine label, pixels. With the
/// official `SHA256SUMS` beside it, this stand-in is refused, as a damaged download would be.
#[cfg(unix)] // symbolic links to the official archives
#[test]
fn reads_a_cifar100_training_archive_beside_the_test_archive() {
    let dir = temp_dir("cifar100-archives");
    for archive in ["cifar-100-binary-test.tar.xz", "cifar-10-binary.tar.xz"] {
        let official = std::fs::canonicalize(default_data().join(archive)).expect("the official archive");
        std::os::unix::fs::symlink(official, dir.join(archive)).unwrap();
    }
    let records: Vec<u8> = (0..3u8).flat_map(|i| [i, 90 + i].into_iter().chain((0..IMAGE_LEN).map(move |p| (p as u8).wrapping_add(i)))).collect();
    let xz = liblzma::write::XzEncoder::new(std::fs::File::create(dir.join("cifar-100-binary-train.tar.xz")).unwrap(), 6);
    let mut tar = tar::Builder::new(xz);
    let mut header = tar::Header::new_gnu();
    header.set_size(records.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "cifar-100-binary/train.bin", &records[..]).unwrap();
    tar.into_inner().unwrap().finish().unwrap();

    std::fs::copy(default_data().join("SHA256SUMS"), dir.join("SHA256SUMS")).expect("the official checksum list");
    let err = load(&dir, Kind::Cifar100, Split::Train).unwrap_err();
    assert!(matches!(&err, DataError::Checksum { file, .. } if file == "train.bin"), "{err}");
    assert_eq!(load(&dir, Kind::Cifar100, Split::Test).expect("the official test archive, checked").len(), 10_000);
    std::fs::remove_file(dir.join("SHA256SUMS")).unwrap();

    let train = load(&dir, Kind::Cifar100, Split::Train).expect("the training archive");
    assert_eq!((train.len(), train.labels.clone(), train.image(2)[5]), (3, vec![90, 91, 92], 7));
    assert_eq!((train.names.len(), train.names[90].as_str()), (100, "train"), "names from the test archive");
    assert_eq!(load(&dir, Kind::Cifar100, Split::Test).expect("the test archive").len(), 10_000);
    let _ = std::fs::remove_dir_all(&dir);
}
