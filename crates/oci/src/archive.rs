//! OCI image archives: a tar holding an OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/...`) that `ctr images import` accepts, named through the index's
//! `io.containerd.image.name` annotation. Layers are gzip-compressed tars; the output is
//! deterministic, so the same layers and config give the same digests and bytes.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, DescriptorBuilder, ImageConfigurationBuilder,
    ImageIndexBuilder, ImageManifestBuilder, MediaType, OciLayoutBuilder, Os, PlatformBuilder,
    RootFsBuilder, Sha256Digest,
};
use sha2::{Digest, Sha256};

use super::layer::Layer;
use super::{ImageError, hex};

/// How a container of the image runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `KEY=value`; PATH is set to the usual directories when absent.
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    /// `UID:GID` (or a name) the container runs as; the image's default when absent.
    pub user: Option<String>,
}

/// What [`write_archive`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveInfo {
    /// `sha256:...` of the image manifest (what `ctr images ls` shows as DIGEST).
    pub manifest_digest: String,
    /// Total size of the archive in bytes.
    pub size: u64,
}

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Counts and hashes what passes through.
struct HashingWriter<W> {
    inner: W,
    hash: Sha256,
    len: u64,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            hash: Sha256::new(),
            len: 0,
        }
    }
    fn finish(self) -> (W, String, u64) {
        (self.inner, hex(&self.hash.finalize()), self.len)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn spec_err(what: &str, e: impl std::fmt::Display) -> ImageError {
    ImageError::Spec {
        message: format!("{what}: {e}"),
    }
}

fn sha256_digest(hex: &str) -> Result<Sha256Digest, ImageError> {
    hex.parse::<Sha256Digest>()
        .map_err(|e| spec_err("digest", e))
}

fn descriptor(media_type: MediaType, hex: &str, size: u64) -> Result<Descriptor, ImageError> {
    Ok(Descriptor::new(media_type, size, sha256_digest(hex)?))
}

/// A blob of a built image, in a file: `sha256:<digest>`, its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// Lower-case hex of the SHA-256 of the file's bytes.
    pub digest: String,
    pub size: u64,
    pub path: PathBuf,
}

/// An image ready to be stored or pushed: its configuration and manifest (the JSON a registry
/// and a runtime read) and its gzip-compressed layers, bottom first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    pub config_json: String,
    pub config_digest: String,
    pub manifest_json: String,
    pub manifest_digest: String,
    pub layers: Vec<Blob>,
}

/// Compresses `layers` into `scratch` (files `layer-N`) and builds the image configuration and
/// manifest. Deterministic: the same layers and config give the same digests.
pub fn build(
    layers: &[&Layer],
    config: &RunConfig,
    scratch: &Path,
) -> Result<BuiltImage, ImageError> {
    // Layers: tar -> (hash = diff_id) -> gzip -> (hash = blob digest) -> file.
    let mut layer_blobs = Vec::new();
    let mut diff_ids = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let path = scratch.join(format!("layer-{i}"));
        let file = File::create(&path).map_err(|e| ImageError::io(&path, e))?;
        let compressed = HashingWriter::new(BufWriter::new(file));
        let gzip = GzEncoder::new(compressed, Compression::default());
        let uncompressed = layer.write_tar(HashingWriter::new(gzip))?;
        let (gzip, diff_id, _) = uncompressed.finish();
        let compressed = gzip.finish().map_err(|e| ImageError::io(&path, e))?;
        let (mut file, digest, size) = compressed.finish();
        file.flush().map_err(|e| ImageError::io(&path, e))?;
        diff_ids.push(format!("sha256:{diff_id}"));
        layer_blobs.push(Blob { digest, size, path });
    }

    let mut env = config.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_string());
    }
    let mut run = ConfigBuilder::default().env(env);
    if !config.entrypoint.is_empty() {
        run = run.entrypoint(config.entrypoint.clone());
    }
    if !config.cmd.is_empty() {
        run = run.cmd(config.cmd.clone());
    }
    if let Some(dir) = &config.working_dir {
        run = run.working_dir(dir.clone());
    }
    if let Some(user) = &config.user {
        run = run.user(user.clone());
    }
    let image_config = ImageConfigurationBuilder::default()
        .architecture(Arch::Amd64)
        .os(Os::Linux)
        .config(run.build().map_err(|e| spec_err("image config", e))?)
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(diff_ids)
                .build()
                .map_err(|e| spec_err("rootfs", e))?,
        )
        .build()
        .map_err(|e| spec_err("image configuration", e))?;
    let config_json = image_config
        .to_string()
        .map_err(|e| spec_err("image configuration", e))?;
    let config_hex = hex(&Sha256::digest(config_json.as_bytes()));

    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(
            MediaType::ImageConfig,
            &config_hex,
            config_json.len() as u64,
        )?)
        .layers(
            layer_blobs
                .iter()
                .map(|b| descriptor(MediaType::ImageLayerGzip, &b.digest, b.size))
                .collect::<Result<Vec<_>, _>>()?,
        )
        .build()
        .map_err(|e| spec_err("manifest", e))?;
    let manifest_json = manifest.to_string().map_err(|e| spec_err("manifest", e))?;
    let manifest_hex = hex(&Sha256::digest(manifest_json.as_bytes()));
    Ok(BuiltImage {
        config_json,
        config_digest: config_hex,
        manifest_json,
        manifest_digest: manifest_hex,
        layers: layer_blobs,
    })
}

/// index.json naming the image's one manifest through annotation `key` (one annotation only:
/// oci-spec keeps annotations in a HashMap, whose order is not stable).
fn index_json(image: &BuiltImage, key: &str, name: &str) -> Result<String, ImageError> {
    let annotations = HashMap::from([(key.to_string(), name.to_string())]);
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![
            DescriptorBuilder::default()
                .media_type(MediaType::ImageManifest)
                .digest(sha256_digest(&image.manifest_digest)?)
                .size(image.manifest_json.len() as u64)
                .annotations(annotations)
                .platform(
                    PlatformBuilder::default()
                        .architecture(Arch::Amd64)
                        .os(Os::Linux)
                        .build()
                        .map_err(|e| spec_err("platform", e))?,
                )
                .build()
                .map_err(|e| spec_err("index descriptor", e))?,
        ])
        .build()
        .map_err(|e| spec_err("index", e))?;
    index.to_string().map_err(|e| spec_err("index", e))
}

fn layout_json() -> Result<String, ImageError> {
    let layout = OciLayoutBuilder::default()
        .image_layout_version("1.0.0")
        .build()
        .map_err(|e| spec_err("oci-layout", e))?;
    serde_json::to_string(&layout).map_err(|e| spec_err("oci-layout", e))
}

/// A scratch directory beside `out`, removed when the write ends whatever happened.
fn with_scratch<T>(
    out: &Path,
    work: impl FnOnce(&Path) -> Result<T, ImageError>,
) -> Result<T, ImageError> {
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| ImageError::io(dir, e))?;
    let file_name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let scratch = dir.join(format!(".{file_name}.blobs-{}", std::process::id()));
    let _ = fs::remove_dir_all(&scratch);
    fs::create_dir_all(&scratch).map_err(|e| ImageError::io(&scratch, e))?;
    let result = work(&scratch);
    let _ = fs::remove_dir_all(&scratch);
    result
}

/// Writes an image of `layers` (bottom first) and `config`, named `reference`
/// (`cniswap.lab/pause:0.1.0`), to `out`. The file appears atomically (written beside it, then
/// renamed).
pub fn write_archive(
    reference: &str,
    layers: &[&Layer],
    config: &RunConfig,
    out: &Path,
) -> Result<ArchiveInfo, ImageError> {
    with_scratch(out, |scratch| {
        let image = build(layers, config, scratch)?;
        write_tar(reference, &image, out)
    })
}

/// Writes an image of `layers` and `config` as an OCI image layout directory `out` (`oci-layout`,
/// `index.json`, `blobs/sha256/`), its manifest named `tag` (`org.opencontainers.image.ref.name`,
/// what `skopeo copy oci:DIR:TAG` selects). `out` must not exist: the layout is written beside it
/// and renamed into place, so it never mixes with an older one.
pub fn write_layout(
    tag: &str,
    layers: &[&Layer],
    config: &RunConfig,
    out: &Path,
) -> Result<ArchiveInfo, ImageError> {
    if fs::symlink_metadata(out).is_ok() {
        return Err(ImageError::io(
            out,
            io::Error::new(io::ErrorKind::AlreadyExists, "already exists"),
        ));
    }
    with_scratch(out, |scratch| {
        let image = build(layers, config, scratch)?;
        let blobs = scratch.join("layout/blobs/sha256");
        fs::create_dir_all(&blobs).map_err(|e| ImageError::io(&blobs, e))?;
        let put =
            |name: &Path, data: &[u8]| fs::write(name, data).map_err(|e| ImageError::io(name, e));
        let layout = scratch.join("layout");
        put(&layout.join("oci-layout"), layout_json()?.as_bytes())?;
        put(
            &layout.join("index.json"),
            index_json(&image, "org.opencontainers.image.ref.name", tag)?.as_bytes(),
        )?;
        put(
            &blobs.join(&image.config_digest),
            image.config_json.as_bytes(),
        )?;
        put(
            &blobs.join(&image.manifest_digest),
            image.manifest_json.as_bytes(),
        )?;
        let mut size = (image.config_json.len() + image.manifest_json.len()) as u64;
        for blob in &image.layers {
            let to = blobs.join(&blob.digest);
            if !to.exists() {
                fs::rename(&blob.path, &to).map_err(|e| ImageError::io(&to, e))?;
                size += blob.size;
            }
        }
        fs::rename(&layout, out).map_err(|e| ImageError::io(out, e))?;
        Ok(ArchiveInfo {
            manifest_digest: format!("sha256:{}", image.manifest_digest),
            size,
        })
    })
}

fn write_tar(reference: &str, image: &BuiltImage, out: &Path) -> Result<ArchiveInfo, ImageError> {
    let index_json = index_json(image, "io.containerd.image.name", reference)?;
    let layout_json = layout_json()?;
    let (config_hex, manifest_hex) = (&image.config_digest, &image.manifest_digest);
    let (config_json, manifest_json) = (&image.config_json, &image.manifest_json);
    let tmp = out.with_file_name(format!(
        ".{}.tmp-{}",
        out.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let file = File::create(&tmp).map_err(|e| ImageError::io(&tmp, e))?;
    let mut tar = tar::Builder::new(BufWriter::new(file));
    let io_err = |e: io::Error| ImageError::io(&tmp, e);
    let put_dir = |tar: &mut tar::Builder<BufWriter<File>>, name: &str| -> io::Result<()> {
        let mut header = plain_header(tar::EntryType::Directory, 0o755, 0);
        tar.append_data(&mut header, name, io::empty())
    };
    let put_bytes =
        |tar: &mut tar::Builder<BufWriter<File>>, name: &str, data: &[u8]| -> io::Result<()> {
            let mut header = plain_header(tar::EntryType::Regular, 0o644, data.len() as u64);
            tar.append_data(&mut header, name, data)
        };
    put_bytes(&mut tar, "oci-layout", layout_json.as_bytes()).map_err(io_err)?;
    put_bytes(&mut tar, "index.json", index_json.as_bytes()).map_err(io_err)?;
    put_dir(&mut tar, "blobs/").map_err(io_err)?;
    put_dir(&mut tar, "blobs/sha256/").map_err(io_err)?;
    put_bytes(
        &mut tar,
        &format!("blobs/sha256/{config_hex}"),
        config_json.as_bytes(),
    )
    .map_err(io_err)?;
    put_bytes(
        &mut tar,
        &format!("blobs/sha256/{manifest_hex}"),
        manifest_json.as_bytes(),
    )
    .map_err(io_err)?;
    let mut written = Vec::new();
    for Blob { path, digest, size } in &image.layers {
        if written.contains(digest) {
            continue; // Two identical layers are one blob.
        }
        let blob = File::open(path).map_err(|e| ImageError::io(path, e))?;
        let mut header = plain_header(tar::EntryType::Regular, 0o644, *size);
        tar.append_data(&mut header, format!("blobs/sha256/{digest}"), blob)
            .map_err(io_err)?;
        written.push(digest.clone());
    }
    let mut writer = tar.into_inner().map_err(io_err)?;
    writer.flush().map_err(io_err)?;
    let file = writer.into_inner().map_err(|e| io_err(e.into_error()))?;
    file.sync_all().map_err(io_err)?;
    let size = file.metadata().map_err(io_err)?.len();
    drop(file);
    fs::rename(&tmp, out).map_err(|e| ImageError::io(out, e))?;
    Ok(ArchiveInfo {
        manifest_digest: format!("sha256:{manifest_hex}"),
        size,
    })
}

fn plain_header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header
}

/// The entries of an archive written by [`write_archive`]: name -> bytes (for tests and checks).
pub fn read_archive(path: &Path) -> Result<Vec<(PathBuf, Vec<u8>)>, ImageError> {
    let file = File::open(path).map_err(|e| ImageError::io(path, e))?;
    let mut archive = tar::Archive::new(file);
    let mut out = Vec::new();
    for entry in archive.entries().map_err(|e| ImageError::io(path, e))? {
        let mut entry = entry.map_err(|e| ImageError::io(path, e))?;
        let name = entry
            .path()
            .map_err(|e| ImageError::io(path, e))?
            .into_owned();
        let mut data = Vec::new();
        io::Read::read_to_end(&mut entry, &mut data).map_err(|e| ImageError::io(path, e))?;
        out.push((name, data));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Layer {
        let mut layer = Layer::new();
        layer.bytes("/hello", "hi\n", 0o755).expect("file");
        layer
    }

    fn config() -> RunConfig {
        RunConfig {
            entrypoint: vec!["/hello".into()],
            ..RunConfig::default()
        }
    }

    #[test]
    fn archive_is_an_oci_layout_whose_digests_match_its_blobs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("img.tar");
        let info =
            write_archive("cniswap.lab/hello:1", &[&sample()], &config(), &out).expect("write");
        let entries = read_archive(&out).expect("read");
        let get = |name: &str| {
            entries
                .iter()
                .find(|(n, _)| n == Path::new(name))
                .map(|(_, d)| d.clone())
                .unwrap_or_else(|| panic!("{name} missing"))
        };
        let layout: serde_json::Value = serde_json::from_slice(&get("oci-layout")).expect("json");
        assert_eq!(layout["imageLayoutVersion"], "1.0.0");
        let index: serde_json::Value = serde_json::from_slice(&get("index.json")).expect("json");
        let desc = &index["manifests"][0];
        assert_eq!(
            desc["annotations"]["io.containerd.image.name"],
            "cniswap.lab/hello:1"
        );
        assert_eq!(desc["digest"], info.manifest_digest);
        let manifest_hex = info.manifest_digest.trim_start_matches("sha256:");
        let manifest_bytes = get(&format!("blobs/sha256/{manifest_hex}"));
        assert_eq!(hex(&Sha256::digest(&manifest_bytes)), manifest_hex);
        let manifest: serde_json::Value = serde_json::from_slice(&manifest_bytes).expect("json");
        for blob in std::iter::once(&manifest["config"])
            .chain(manifest["layers"].as_array().expect("layers"))
        {
            let digest = blob["digest"]
                .as_str()
                .expect("digest")
                .trim_start_matches("sha256:");
            let data = get(&format!("blobs/sha256/{digest}"));
            assert_eq!(hex(&Sha256::digest(&data)), digest);
            assert_eq!(blob["size"].as_u64(), Some(data.len() as u64));
        }
        let config_hex = manifest["config"]["digest"]
            .as_str()
            .expect("digest")
            .trim_start_matches("sha256:");
        let config: serde_json::Value =
            serde_json::from_slice(&get(&format!("blobs/sha256/{config_hex}"))).expect("json");
        assert_eq!(config["config"]["Entrypoint"][0], "/hello");
        assert_eq!(config["architecture"], "amd64");
        // The diff_id is the digest of the uncompressed layer tar.
        let layer_tar = sample().write_tar(Vec::new()).expect("tar");
        assert_eq!(
            config["rootfs"]["diff_ids"][0],
            format!("sha256:{}", hex(&Sha256::digest(&layer_tar)))
        );
        assert_eq!(info.size, fs::metadata(&out).expect("meta").len());
    }

    #[test]
    fn the_same_inputs_give_the_same_archive() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a.tar");
        let b = dir.path().join("b.tar");
        let ia = write_archive("cniswap.lab/hello:1", &[&sample()], &config(), &a).expect("a");
        let ib = write_archive("cniswap.lab/hello:1", &[&sample()], &config(), &b).expect("b");
        assert_eq!(ia, ib);
        assert_eq!(fs::read(&a).expect("a"), fs::read(&b).expect("b"));
        let other = dir.path().join("c.tar");
        let ic = write_archive("cniswap.lab/hello:2", &[&sample()], &config(), &other).expect("c");
        assert_eq!(
            ic.manifest_digest, ia.manifest_digest,
            "the name lives in the index only"
        );
        assert_ne!(fs::read(&a).expect("a"), fs::read(&other).expect("c"));
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .expect("dir")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn a_layout_directory_holds_the_same_image_as_the_archive() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tar = dir.path().join("img.tar");
        let layout = dir.path().join("layout");
        let config = RunConfig {
            user: Some("65532:65532".into()),
            ..config()
        };
        let archived = write_archive("x/hello:1", &[&sample()], &config, &tar).expect("tar");
        let laid = write_layout("1", &[&sample()], &config, &layout).expect("layout");
        assert_eq!(archived.manifest_digest, laid.manifest_digest);
        let index: serde_json::Value =
            serde_json::from_slice(&fs::read(layout.join("index.json")).expect("index"))
                .expect("json");
        assert_eq!(
            index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
            "1"
        );
        let mut blobs: Vec<String> = fs::read_dir(layout.join("blobs/sha256"))
            .expect("blobs")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        blobs.sort();
        for blob in &blobs {
            let data = fs::read(layout.join("blobs/sha256").join(blob)).expect("blob");
            assert_eq!(&hex(&Sha256::digest(&data)), blob);
        }
        assert_eq!(blobs.len(), 3, "config, manifest, one layer: {blobs:?}");
        let config_json = blobs
            .iter()
            .map(|b| fs::read_to_string(layout.join("blobs/sha256").join(b)).unwrap_or_default())
            .find(|t| t.contains("rootfs"))
            .expect("config");
        assert!(
            config_json.contains("\"User\":\"65532:65532\""),
            "{config_json}"
        );
        // Never over an existing directory, and no scratch left beside it.
        let again = write_layout("1", &[&sample()], &config, &layout);
        assert!(again.is_err());
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
    }
}
