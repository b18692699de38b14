//! Adaptation from torchvision's VGG11: a file with torchvision's names and shapes (built here,
//! since nothing can be downloaded) maps onto our convolutions; wrong files are refused clearly.
use std::collections::HashMap;
use std::path::Path;
use train_host::adapt::{adapt, TORCHVISION_CONVS};

const SHAPES: [(usize, usize); 8] = [(64, 3), (128, 64), (256, 128), (256, 256), (512, 256), (512, 512), (512, 512), (512, 512)];

fn write(path: &Path, tensors: &[(String, Vec<usize>, Vec<f32>)]) {
    let bytes: Vec<Vec<u8>> = tensors.iter().map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect()).collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((n, s, _), b)| (n.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, None::<HashMap<String, String>>, path).unwrap();
}

fn torchvision_like() -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let mut t = Vec::new();
    for (&idx, &(out, inp)) in TORCHVISION_CONVS.iter().zip(&SHAPES) {
        let w: Vec<f32> = (0..out * inp * 9).map(|i| ((i * 31 + idx) % 97) as f32 / 97.0 - 0.5).collect();
        t.push((format!("features.{idx}.weight"), vec![out, inp, 3, 3], w));
        t.push((format!("features.{idx}.bias"), vec![out], (0..out).map(|i| i as f32 * 1e-3 + idx as f32).collect()));
    }
    // torchvision's classifier, which adaptation drops.
    t.push(("classifier.6.weight".into(), vec![1000, 4096], vec![0.0; 1000 * 4096]));
    t
}

#[test]
fn torchvision_names_map_onto_our_convolutions() {
    let dir = std::env::temp_dir().join(format!("cifhe-adapt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("vgg11.safetensors");
    let tensors = torchvision_like();
    write(&path, &tensors);
    let net = adapt(&path, 10, 1).expect("adapts");
    let convs: Vec<_> = net.params.iter().flatten().collect();
    assert_eq!(convs.len(), 9, "8 convolutions and the new classifier");
    for (k, (&idx, p)) in TORCHVISION_CONVS.iter().zip(&convs).enumerate() {
        let w = &tensors[2 * k].2;
        assert_eq!(&p.weight, w, "features.{idx}.weight");
        assert_eq!(p.bias[1], 1e-3 + idx as f32);
    }
    assert_eq!(convs[8].weight.len(), 512 * 10);

    // Wrong shape, missing tensor, wrong format: clear errors.
    let mut bad = torchvision_like();
    bad[2].1 = vec![128, 32, 3, 3];
    bad[2].2.truncate(128 * 32 * 9);
    write(&path, &bad);
    let err = adapt(&path, 10, 1).unwrap_err();
    assert!(err.contains("features.3.weight has shape [128, 32, 3, 3]"), "{err}");
    let mut missing = torchvision_like();
    missing.retain(|(n, _, _)| n != "features.18.bias");
    write(&path, &missing);
    assert!(adapt(&path, 10, 1).unwrap_err().contains("no tensor features.18.bias"));
    std::fs::write(dir.join("x.safetensors"), b"garbage").unwrap();
    assert!(adapt(&dir.join("x.safetensors"), 10, 1).unwrap_err().contains("not a safetensors file"));
    std::fs::write(dir.join("x.pth"), b"garbage").unwrap();
    assert!(adapt(&dir.join("x.pth"), 10, 1).unwrap_err().contains("not a PyTorch weights file"));
    assert!(adapt(&dir.join("x.onnx"), 10, 1).unwrap_err().contains(".pth or .safetensors"));
    let _ = std::fs::remove_dir_all(&dir);
}
