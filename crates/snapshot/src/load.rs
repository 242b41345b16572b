//! Reading a snapshot directory or file.

use crate::decode::Object;
use crate::error::InputError;
use crate::read::{self, Checked, Opened};
use crate::store::{
    HelmValues, Manifest, NodeInventory, OmniTemplateSource, Snapshot, SourceFile, TalosSource,
    is_linted_manifest,
};
use cniswap_config::limits::{self, LimitHit, Limits};
use cniswap_config::{Node as YamlNode, helm, omni, redact, talhelper, talos};
use cniswap_model::text::escape_control as esc;
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use std::path::{Component, Path, PathBuf};
use tracing::{debug, info};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
}

/// The conventional area a file sits in, from its first directory below the snapshot root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Area {
    Cluster,
    Talos,
    Omni,
    Helm,
    Nodes,
    Elsewhere,
}

/// How files are read and named.
#[derive(Debug, Clone, Copy)]
struct Mode<'a> {
    /// Files are named `<prefix>/<path below the root>`: the path as the user gave it, so
    /// findings open from the working directory. `None`: relative to the snapshot root.
    label_prefix: Option<&'a Path>,
    /// `lint PATH...` reads repositories, where `cluster/` or `talos/` are just folder names:
    /// classify by content there, not by the snapshot layout.
    by_content: bool,
    /// A file that cannot be read is listed as skipped, with the error, instead of ending the
    /// run: one bad file in a repository must not hide the findings of the rest.
    lenient: bool,
}

/// Loads a snapshot from a directory (recursively) or from a single file. Files are named
/// relative to the snapshot (`talos/controlplane.yaml`).
pub fn load(path: &Path) -> Result<Snapshot, InputError> {
    load_snapshot(path, false)
}

/// Like [`load`], but files are named by the path as given (`snap/talos/controlplane.yaml`),
/// so that findings about them open from the working directory (`lint PATH --snapshot S`).
pub fn load_as_given(path: &Path) -> Result<Snapshot, InputError> {
    load_snapshot(path, true)
}

fn load_snapshot(path: &Path, as_given: bool) -> Result<Snapshot, InputError> {
    let meta = std::fs::metadata(path).map_err(|e| {
        InputError::new(
            path,
            format!("cannot read snapshot: {e}"),
            "check the path given to --snapshot",
        )
    })?;
    let mut snapshot = Snapshot {
        source: format!("snapshot:{}", path.display()),
        ..Snapshot::default()
    };
    let (root, prefix) = if meta.is_dir() {
        (path, clean_prefix(path))
    } else {
        let parent = path.parent().unwrap_or(Path::new(""));
        (parent, clean_prefix(parent))
    };
    let mode = Mode {
        label_prefix: if as_given { prefix } else { None },
        by_content: false,
        lenient: false,
    };
    if meta.is_dir() {
        let mut files = Vec::new();
        Tree::new(root)?.collect(root, root, &mut files, &mut snapshot, mode)?;
        files.sort();
        for file in &files {
            load_file(&mut snapshot, root, file, mode)?;
        }
    } else {
        require_regular(path, meta.file_type())?;
        load_file(&mut snapshot, root, path, mode)?;
    }
    if snapshot.files_read == 0 {
        return Err(InputError::new(
            path,
            if snapshot.skipped.is_empty() {
                "no snapshot files found".to_string()
            } else {
                format!(
                    "no usable snapshot files found ({} skipped)",
                    snapshot.skipped.len()
                )
            },
            "point --snapshot at `kubectl get -o yaml|json` output or a directory written by `cniswap snapshot --out-dir DIR`",
        ));
    }
    Ok(snapshot)
}

/// `prefix` without leading `./` components; `None` when nothing is left.
fn clean_prefix(prefix: &Path) -> Option<&Path> {
    let mut rest = prefix;
    while let Ok(stripped) = rest.strip_prefix(".") {
        if stripped == rest {
            break;
        }
        rest = stripped;
    }
    (!rest.as_os_str().is_empty()).then_some(rest)
}

/// Loads several files or directories into one snapshot. Files are named as the user gave
/// them (`dir/sub/file.yaml`), so findings point at paths that open. Directories are read by
/// content (only `helm/` and `nodes/` keep their meaning). They are added to `snapshot`
/// (empty, or a cluster snapshot the files are checked against); a file that is already part
/// of it (the paths overlap the snapshot) is not read twice. Any unreadable file is an error.
pub fn load_paths(snapshot: &mut Snapshot, paths: &[std::path::PathBuf]) -> Result<(), InputError> {
    load_paths_with(snapshot, paths, false).map(|_| ())
}

/// [`load_paths`] for `cniswap lint PATH...`: a file that cannot be read (invalid YAML, no
/// permission) is listed as skipped with the error and its position, and counted in
/// [`Snapshot::unreadable`]; only a PATH that does not exist is an error. Returns how many
/// files of the PATHs are part of the snapshot now (read now, or already read with it).
pub fn load_repository(
    snapshot: &mut Snapshot,
    paths: &[std::path::PathBuf],
) -> Result<usize, InputError> {
    let before = snapshot.files_read;
    let again = load_paths_with(snapshot, paths, true)?;
    Ok(snapshot.files_read - before + again)
}

/// Returns how many files were not read because the snapshot already held them.
fn load_paths_with(
    snapshot: &mut Snapshot,
    paths: &[std::path::PathBuf],
    lenient: bool,
) -> Result<usize, InputError> {
    let mut again = 0;
    for path in paths {
        let meta = std::fs::metadata(path)
            .map_err(|e| InputError::new(path, format!("cannot read: {e}"), "check the path"))?;
        let root = if meta.is_dir() {
            path.as_path()
        } else {
            path.parent().unwrap_or(Path::new(""))
        };
        let mode = Mode {
            label_prefix: clean_prefix(root),
            by_content: true,
            lenient,
        };
        let mut files = Vec::new();
        if meta.is_dir() {
            Tree::new(root)?.collect(root, root, &mut files, snapshot, mode)?;
            files.sort();
        } else {
            require_regular(path, meta.file_type())?;
            files.push(path.clone());
        }
        for file in &files {
            if std::fs::canonicalize(file).is_ok_and(|c| snapshot.read_files.contains(&c)) {
                again += 1;
            }
            load_file(snapshot, root, file, mode)?;
        }
        read_referenced_patches(snapshot, root, mode)?;
    }
    crate::values_from::resolve(snapshot);
    Ok(again)
}

/// talhelper `@path` patches that were not among the inputs: read from the talconfig's
/// directory when they lie inside the tree being read (the same rule as links: nothing
/// outside it is read), else listed as skipped with why.
fn read_referenced_patches(
    snapshot: &mut Snapshot,
    root: &Path,
    mode: Mode,
) -> Result<(), InputError> {
    let real_root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let pending: Vec<(String, PathBuf)> = snapshot
        .talhelper_patch_files
        .iter()
        .filter(|(label, _)| {
            !snapshot.sources.iter().any(|s| &s.path == *label)
                && !snapshot.skipped.iter().any(|s| &s.path == *label)
        })
        .map(|(label, disk)| (label.clone(), disk.clone()))
        .collect();
    for (label, disk) in pending {
        match std::fs::canonicalize(&disk) {
            Ok(real) if real.starts_with(&real_root) && real.is_file() => {
                load_file(snapshot, root, &disk, mode)?;
            }
            Ok(_) => snapshot.skip(
                label,
                "talhelper patch file outside the directory read: pass it to cniswap too to read it",
            ),
            Err(e) => snapshot.skip(
                label,
                format!("talhelper patch file not found ({e}): settings it makes are not checked"),
            ),
        }
    }
    Ok(())
}

/// A path named on the command line must be a regular file (or a directory): a FIFO would
/// block forever.
fn require_regular(path: &Path, file_type: std::fs::FileType) -> Result<(), InputError> {
    if file_type.is_file() {
        return Ok(());
    }
    Err(InputError::new(
        path,
        format!(
            "{}: only regular files and directories are read",
            read::describe(file_type)
        ),
        "pass a regular file or a directory",
    ))
}

/// Walks a directory tree. Symbolic links are followed while they stay inside the tree (each
/// directory once, so a loop ends); a link out of the tree, or a broken one, is an input error
/// in every mode: a shared snapshot must not make cniswap read `/etc/shadow` as Helm values,
/// and a linked directory must not be skipped silently.
struct Tree {
    real_root: PathBuf,
    visited: HashSet<PathBuf>,
}

impl Tree {
    fn new(root: &Path) -> Result<Tree, InputError> {
        let real_root = std::fs::canonicalize(root)
            .map_err(|e| InputError::new(root, format!("cannot read: {e}"), "check the path"))?;
        Ok(Tree {
            visited: HashSet::from([real_root.clone()]),
            real_root,
        })
    }

    fn collect(
        &mut self,
        root: &Path,
        dir: &Path,
        files: &mut Vec<PathBuf>,
        snapshot: &mut Snapshot,
        mode: Mode,
    ) -> Result<(), InputError> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            // In a repository, one directory that cannot be listed does not hide the rest.
            Err(e) if mode.lenient && dir != root => {
                snapshot.unreadable += 1;
                snapshot.skip(
                    label(root, dir, mode),
                    format!("cannot list directory: {e} (its files were not checked)"),
                );
                return Ok(());
            }
            Err(e) => {
                return Err(InputError::new(
                    dir,
                    format!("cannot list directory: {e}"),
                    "check permissions on the snapshot directory",
                ));
            }
        };
        for entry in entries {
            let entry = entry.map_err(|e| {
                InputError::new(
                    dir,
                    format!("cannot list directory: {e}"),
                    "check permissions",
                )
            })?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let mut file_type = entry
                .file_type()
                .map_err(|e| InputError::new(&path, e.to_string(), "check permissions"))?;
            if name.starts_with('.') {
                if !file_type.is_dir() {
                    snapshot.skip(label(root, &path, mode), "hidden file");
                }
                continue;
            }
            if file_type.is_symlink() {
                let target = std::fs::canonicalize(&path).map_err(|e| {
                    InputError::new(
                        &path,
                        format!("broken symbolic link: {e}"),
                        "remove the link or point it at a file inside the directory",
                    )
                })?;
                if !target.starts_with(&self.real_root) {
                    if !has_input_extension(&name) && !target.is_dir() {
                        snapshot.skip(
                            label(root, &path, mode),
                            "symbolic link out of the directory (not an input file)",
                        );
                        continue;
                    }
                    return Err(InputError::new(
                        &path,
                        format!(
                            "symbolic link to {}, outside {}: cniswap does not follow links out of the tree it reads",
                            esc(&target.display().to_string()),
                            esc(&self.real_root.display().to_string())
                        ),
                        "copy the file into the directory, or pass its real path as an argument",
                    ));
                }
                file_type = std::fs::metadata(&target)
                    .map_err(|e| InputError::new(&path, e.to_string(), "check the link"))?
                    .file_type();
                if file_type.is_dir() && !self.visited.insert(target) {
                    snapshot.skip(
                        label(root, &path, mode),
                        "symbolic link to a directory already read",
                    );
                    continue;
                }
            } else if file_type.is_dir()
                && let Ok(real) = std::fs::canonicalize(&path)
            {
                self.visited.insert(real);
            }
            if file_type.is_dir() {
                self.collect(root, &path, files, snapshot, mode)?;
            } else if file_type.is_file() {
                files.push(path);
            } else {
                debug!("{}: not a regular file", esc(&label(root, &path, mode)));
                snapshot.skip(
                    label(root, &path, mode),
                    format!("{}: only regular files are read", read::describe(file_type)),
                );
            }
        }
        Ok(())
    }
}

fn has_input_extension(name: &str) -> bool {
    let lower = name.to_lowercase();
    let extension = lower.rsplit_once('.').map_or("", |(_, e)| e);
    matches!(extension, "json" | "yaml" | "yml" | "patch") || template_extension(extension)
}

fn template_extension(extension: &str) -> bool {
    matches!(
        extension,
        "j2" | "jinja" | "jinja2" | "tpl" | "tftpl" | "gotmpl" | "tmpl"
    )
}

/// A file's name in findings and reports (see [`Mode::label_prefix`]).
fn label(root: &Path, path: &Path, mode: Mode) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    match mode.label_prefix {
        Some(prefix) => prefix.join(rel).display().to_string(),
        None => rel.display().to_string(),
    }
}

fn area_of(rel: &Path) -> Area {
    match rel.components().next() {
        Some(Component::Normal(first)) if rel.components().count() > 1 => match first.to_str() {
            Some("cluster") => Area::Cluster,
            Some("talos") => Area::Talos,
            Some("omni") => Area::Omni,
            Some("helm") => Area::Helm,
            Some("nodes") => Area::Nodes,
            _ => Area::Elsewhere,
        },
        _ => Area::Elsewhere,
    }
}

fn load_file(
    snapshot: &mut Snapshot,
    root: &Path,
    path: &Path,
    mode: Mode,
) -> Result<(), InputError> {
    let rel_path = path.strip_prefix(root).unwrap_or(path);
    let area = match (area_of(rel_path), mode.by_content) {
        (Area::Cluster | Area::Talos | Area::Omni, true) => Area::Elsewhere,
        (area, _) => area,
    };
    let rel = label(root, path, mode);
    // The same file through two paths (`lint snap/talos --snapshot snap`) is read once.
    if let Ok(canonical) = std::fs::canonicalize(path)
        && !snapshot.read_files.insert(canonical)
    {
        debug!("{}: already read under another name", esc(&rel));
        return Ok(());
    }
    match read_file(snapshot, path, rel.clone(), area, mode.lenient) {
        Err(e) if mode.lenient => {
            let at = match (e.line, e.column) {
                (Some(line), Some(column)) => format!(" at {line}:{column}"),
                (Some(line), None) => format!(" at line {line}"),
                _ => String::new(),
            };
            snapshot.unreadable += 1;
            snapshot.skip(
                rel,
                format!(
                    "cannot be read{at}: {} (its settings were not checked)",
                    e.message
                ),
            );
            Ok(())
        }
        other => other,
    }
}

/// The directory of the Helm chart whose `templates/` holds `path`, if any.
fn helm_chart_of(path: &Path) -> Option<&Path> {
    path.ancestors()
        .skip(1)
        .filter(|dir| dir.file_name().is_some_and(|n| n == "templates"))
        .filter_map(Path::parent)
        .find(|chart| chart.join("Chart.yaml").is_file())
}

/// Whether a file is a rollback file: it restores the configuration from before a migration
/// on purpose, so it is not checked against the target or merged with the forward configs.
/// Marked by a `cniswap:rollback` comment among the file's leading comment lines, or by a
/// name starting with `rollback-` (what `cniswap plan` writes).
pub fn is_rollback_file(name: &str, text: &str) -> bool {
    name.starts_with("rollback-")
        || text
            .lines()
            .map(str::trim)
            .take_while(|l| l.is_empty() || l.starts_with('#'))
            .any(|l| l.contains(ROLLBACK_MARKER))
}

/// Values for after a migration: cniswap's plan writes them as `values-final.yaml`; a file
/// whose leading comments hold `cniswap:final` says so too.
fn is_final_values(rel: &str, text: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel).to_ascii_lowercase();
    name.starts_with("values-final")
        || text
            .lines()
            .map(str::trim)
            .take_while(|l| l.is_empty() || l.starts_with('#'))
            .any(|l| l.contains(FINAL_MARKER))
}

/// The marker comment of values meant for after the migration.
pub const FINAL_MARKER: &str = "cniswap:final";

/// The marker comment of a rollback file: `# cniswap:rollback <what it restores>`.
pub const ROLLBACK_MARKER: &str = "cniswap:rollback";

fn read_file(
    snapshot: &mut Snapshot,
    path: &Path,
    rel: String,
    area: Area,
    lenient: bool,
) -> Result<(), InputError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let extension = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_string())
        .unwrap_or_default();
    let is_template = template_extension(&extension);
    let format = match extension.as_str() {
        "json" => Some(Format::Json),
        "yaml" | "yml" => Some(Format::Yaml),
        // Talos patches are often named *.patch; templates may still be plain YAML.
        "patch" => Some(Format::Yaml),
        _ if is_template => Some(Format::Yaml),
        _ => None,
    };
    let Some(format) = format else {
        snapshot.skip(rel, crate::store::NOT_YAML_OR_JSON);
        return Ok(());
    };
    if let Some(chart) = helm_chart_of(path) {
        let chart = chart.file_name().map_or_else(
            || chart.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        snapshot.skip(
            rel,
            format!(
                "Helm chart template (chart `{chart}`): render it (`helm template`) and lint the output",
            ),
        );
        return Ok(());
    }
    if matches!(name.as_str(), "chart.yaml" | "chart.lock") {
        snapshot.skip(
            rel,
            "Helm chart metadata: the chart's values and rendered templates are what cniswap checks",
        );
        return Ok(());
    }
    if name.starts_with("rollback-") {
        snapshot.skip(rel, crate::store::ROLLBACK_FILE);
        return Ok(());
    }

    let limits = Limits::current();
    let (file, size) = match read::open_regular(path).map_err(|e| {
        InputError::new(
            path,
            format!("cannot open: {e}"),
            "make the file readable, or remove it from the snapshot",
        )
    })? {
        Opened::File { file, size } => (file, size),
        Opened::NotRegular(what) => {
            snapshot.skip(rel, format!("{what}: only regular files are read"));
            return Ok(());
        }
    };
    let remaining = limits.max_input_bytes.saturating_sub(snapshot.bytes_read);
    if size > remaining {
        return Err(over(path, limits::MAX_INPUT_BYTES, limits.max_input_bytes));
    }
    snapshot.bytes_read += size;
    // Configs are read whole and must fit the file budget; Kubernetes dumps are streamed.
    if size > limits.max_file_bytes
        && matches!(area, Area::Talos | Area::Omni | Area::Helm | Area::Nodes)
    {
        return Err(over(path, limits::MAX_FILE_BYTES, limits.max_file_bytes));
    }
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let head = reader
        .fill_buf()
        .map_err(|e| InputError::new(path, format!("cannot read: {e}"), "check the file"))?;
    if head.is_empty() {
        snapshot.skip(rel, "empty file");
        return Ok(());
    }
    let bom = head.starts_with(read::BOM);
    let head = &head[if bom { read::BOM.len() } else { 0 }..];
    if let Some(problem) = read::encoding_problem(&head[..head.len().min(4096)]) {
        if is_template {
            snapshot.skip(
                rel,
                format!("{}, with a template extension", problem.message),
            );
            return Ok(());
        }
        return Err(problem.into_error(path));
    }
    // A file too large to read whole can only be a dump of Kubernetes objects: say at once when
    // its first megabyte has no top-level `apiVersion:`/`kind:`.
    let dump_like = head
        .split(|b| *b == b'\n')
        .any(|line| line.starts_with(b"apiVersion:") || line.starts_with(b"kind:"));
    if bom {
        reader.consume(read::BOM.len());
    }
    // Buffered outside the check too: serde_json reads byte by byte, and through `Checked`
    // alone each byte was a call of its own (issue 19: 5.2 s instead of 2.2 s on 5,000 nodes).
    let checked = |reader| BufReader::with_capacity(1 << 16, Checked::new(reader, remaining));

    match (area, format) {
        (Area::Nodes, Format::Json) => {
            return load_inventory(snapshot, path, &rel, checked(reader));
        }
        (Area::Nodes, Format::Yaml) => {
            snapshot.skip(
                rel,
                "node inventories are JSON files (`cniswap node inventory -o json`)",
            );
            return Ok(());
        }
        (Area::Cluster, Format::Json) if name == crate::store::UNREAD_FILE => {
            return read_unread(snapshot, path, checked(reader));
        }
        (_, Format::Json) => {
            let start = if bom { read::BOM.len() as u64 } else { 0 };
            return stream_json(snapshot, path, rel, reader, start, remaining);
        }
        (Area::Cluster, Format::Yaml) => {
            let n = stream_objects(snapshot, path, checked(reader), Format::Yaml)?;
            info!("read {} as {n} Kubernetes objects", esc(&rel));
            snapshot.files_read += 1;
            return Ok(());
        }
        (Area::Elsewhere, Format::Yaml) if size > limits.max_file_bytes && !dump_like => {
            let hit = LimitHit::new(limits::MAX_FILE_BYTES, limits.max_file_bytes);
            snapshot.skip(
                rel,
                format!(
                    "{size} bytes: {hit}, and not a dump of Kubernetes objects (which are streamed); raise {} to read it",
                    hit.budget.env
                ),
            );
            return Ok(());
        }
        (Area::Elsewhere, Format::Yaml) if size > limits.max_file_bytes => {
            // Too large to read whole: it can only be a dump of Kubernetes objects.
            let mut objects = crate::store::Objects::default();
            let streamed = load_reader(checked(reader), Format::Yaml, |object| {
                if object == Object::NotKubernetes {
                    return Err(String::new());
                }
                objects.add(object);
                Ok(())
            });
            match streamed {
                Ok(()) if !objects.is_empty() => {
                    info!("read {} as {} Kubernetes objects", esc(&rel), objects.len());
                    merge_objects(&mut snapshot.objects, objects);
                    snapshot.files_read += 1;
                }
                Ok(()) => snapshot.skip(rel, "large YAML file without Kubernetes objects"),
                Err(e) if e.message.is_empty() => {
                    let hit = LimitHit::new(limits::MAX_FILE_BYTES, limits.max_file_bytes);
                    snapshot.skip(
                        rel,
                        format!(
                            "{size} bytes: {hit}, and not only Kubernetes objects (which are streamed); raise {} to read it",
                            hit.budget.env
                        ),
                    );
                }
                Err(e) => {
                    return Err(InputError {
                        path: path.to_path_buf(),
                        ..e
                    });
                }
            }
            return Ok(());
        }
        _ => {}
    }

    let mut bytes = Vec::with_capacity(size as usize);
    let mut reader = checked(reader);
    reader
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(path, &e))?;
    if bytes.len() as u64 > limits.max_file_bytes {
        return Err(over(path, limits::MAX_FILE_BYTES, limits.max_file_bytes));
    }
    let text = read::text_of(path, bytes)?;
    if is_rollback_file(&name, &text) {
        snapshot.skip(rel, crate::store::ROLLBACK_FILE);
        return Ok(());
    }
    let templated = is_template || text.contains("{{") || text.contains("{%");
    // A template file (by extension) is read with its expressions blanked out even when it
    // happens to parse as it is: `key: {{ .Values.x }}` is a YAML flow mapping, not a value.
    let blanked = is_template
        .then(|| cniswap_config::template::neutralise(&text))
        .flatten();
    let text = match blanked {
        Some(plain) => {
            snapshot.read_in_part(
                rel.clone(),
                "template expressions were blanked out, so settings they produce are not checked",
            );
            plain
        }
        None => text,
    };
    let redacted = match redact::redact_yaml(&text) {
        Ok(r) => r,
        Err(e) if e.limit.is_some() => return Err(yaml_error(path, &e)),
        Err(e) if templated => {
            // Lint what can be read: blank out the template syntax, keep every line in place.
            match cniswap_config::template::neutralise(&text)
                .and_then(|plain| redact::redact_yaml(&plain).ok())
            {
                Some(r) => {
                    snapshot.read_in_part(
                        rel.clone(),
                        "template expressions were blanked out, so settings they produce are not checked",
                    );
                    r
                }
                None => {
                    snapshot.skip(rel, format!("template does not parse as YAML until rendered ({e}); render it and inspect the output"));
                    return Ok(());
                }
            }
        }
        Err(e) => return Err(yaml_error(path, &e)),
    };
    drop(text);
    classify_documents(snapshot, path, &rel, area, redacted, templated, lenient)
}

fn over(path: &Path, budget: limits::Budget, limit: u64) -> InputError {
    let hit = LimitHit::new(budget, limit);
    InputError::new(path, hit.to_string(), hit.help())
}

/// A YAML error or budget breach of a file, as an input error at its position.
fn yaml_error(path: &Path, e: &cniswap_config::YamlError) -> InputError {
    match e.limit {
        Some(hit) => InputError::new(path, hit.to_string(), hit.help()).at(e.line, e.column),
        None => InputError::new(
            path,
            format!("invalid YAML: {}", e.message),
            "fix the YAML at that position, or move the file out of the snapshot",
        )
        .at(e.line, e.column),
    }
}

fn io_error(path: &Path, e: &std::io::Error) -> InputError {
    read::input_error_from_io(path, e)
        .unwrap_or_else(|| InputError::new(path, format!("cannot read: {e}"), "check the file"))
}

fn merge_objects(into: &mut crate::store::Objects, from: crate::store::Objects) {
    let crate::store::Objects {
        nodes,
        pods,
        daemonsets,
        deployments,
        statefulsets,
        config_maps,
        pdbs,
        validating_webhooks,
        mutating_webhooks,
        services,
        network_policies,
        namespaces,
        csi_drivers,
        crds,
        storage_classes,
        cni_configs,
        cni_policies,
        other_kinds,
        secrets_dropped,
    } = from;
    /// Appends; an empty list takes the other's allocation (150,000 pods are not copied).
    fn append<T>(into: &mut Vec<T>, mut from: Vec<T>) {
        if into.is_empty() {
            *into = from;
        } else {
            into.append(&mut from);
        }
    }
    append(&mut into.nodes, nodes);
    append(&mut into.pods, pods);
    append(&mut into.daemonsets, daemonsets);
    append(&mut into.deployments, deployments);
    append(&mut into.statefulsets, statefulsets);
    append(&mut into.config_maps, config_maps);
    append(&mut into.pdbs, pdbs);
    append(&mut into.validating_webhooks, validating_webhooks);
    append(&mut into.mutating_webhooks, mutating_webhooks);
    append(&mut into.services, services);
    append(&mut into.network_policies, network_policies);
    append(&mut into.namespaces, namespaces);
    append(&mut into.csi_drivers, csi_drivers);
    append(&mut into.crds, crds);
    append(&mut into.storage_classes, storage_classes);
    append(&mut into.cni_configs, cni_configs);
    append(&mut into.cni_policies, cni_policies);
    for (kind, count) in other_kinds {
        *into.other_kinds.entry(kind).or_default() += count;
    }
    into.secrets_dropped += secrets_dropped;
}

fn load_inventory(
    snapshot: &mut Snapshot,
    path: &Path,
    rel: &str,
    reader: impl Read,
) -> Result<(), InputError> {
    let node = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    cniswap_model::names::dns1123_subdomain(&node).map_err(|reason| {
        InputError::new(
            path,
            format!(
                "node name {} (from the file name) is not valid: {reason}",
                cniswap_model::names::shown(&node)
            ),
            "name node inventories nodes/<node name>.json",
        )
    })?;
    let data: cniswap_model::Inventory = serde_json::from_reader(reader).map_err(|e| {
        let mut error = json_error(path, &e);
        error.help = "nodes/ holds `cniswap node inventory -o json` output".into();
        error
    })?;
    if data.schema_version != cniswap_model::INVENTORY_SCHEMA_VERSION {
        return Err(InputError::new(
            path,
            format!(
                "inventory schema_version {} is not one this cniswap reads ({})",
                data.schema_version,
                cniswap_model::INVENTORY_SCHEMA_VERSION
            ),
            "write the inventory again with this cniswap (`cniswap node inventory -o json`)",
        ));
    }
    info!("read {} as the node inventory of {}", esc(rel), esc(&node));
    snapshot.node_inventories.push(NodeInventory {
        node,
        file: rel.to_string(),
        data,
    });
    snapshot.files_read += 1;
    Ok(())
}

/// `cluster/unread.json`: the kinds the live read that made the snapshot could not list.
fn read_unread(snapshot: &mut Snapshot, path: &Path, reader: impl Read) -> Result<(), InputError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Unread {
        unread: Vec<cniswap_model::UnreadKind>,
    }
    let unread: Unread = serde_json::from_reader(reader).map_err(|e| json_error(path, &e))?;
    for kind in unread.unread {
        snapshot.mark_unread(kind);
    }
    snapshot.files_read += 1;
    Ok(())
}

fn json_error(path: &Path, e: &serde_json::Error) -> InputError {
    if let Some(error) = std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .and_then(|io| read::input_error_from_io(path, io))
    {
        return error;
    }
    let what = match e.classify() {
        serde_json::error::Category::Eof => "truncated JSON",
        serde_json::error::Category::Syntax => "invalid JSON",
        serde_json::error::Category::Data => "unexpected value",
        serde_json::error::Category::Io => "cannot read",
    };
    InputError::new(
        path,
        format!("{what}: {}", scrub(&e.to_string())),
        "fix the JSON at that position, or regenerate it with `kubectl get -o json`",
    )
    .at(e.line(), e.column())
}

/// Drops the values decoders quote in their messages (`invalid type: string "..."`): the value
/// of a mistyped field may be a secret.
fn scrub(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find("string \"") {
        let (before, after) = rest.split_at(i + "string \"".len());
        out.push_str(before);
        let mut end = None;
        let mut escaped = false;
        for (j, c) in after.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    end = Some(j);
                    break;
                }
                _ => escaped = false,
            }
        }
        match end {
            Some(j) => {
                out.push_str("...\"");
                rest = &after[j + 1..];
            }
            None => {
                out.push_str("...\"");
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Streams a file outside `cluster/`: it counts as read when it held objects, else it is skipped.
/// Why a JSON file gave no objects.
const JSON_WITHOUT_OBJECTS: &str = "JSON without Kubernetes objects (no `kind`)";

/// Streams the Kubernetes objects of a JSON file (`reader` at its first byte after a byte order
/// mark, which ends at `start`) into the snapshot: the fast way (cut into objects and List
/// items, each decoded from a slice), or, for anything the fast way does not take exactly like
/// serde_json's reader, again from the start the reader's way, which reports errors with
/// their positions. The objects of a fast attempt are only kept when it read the whole file.
fn stream_json(
    snapshot: &mut Snapshot,
    path: &Path,
    rel: String,
    reader: BufReader<std::fs::File>,
    start: u64,
    budget: u64,
) -> Result<(), InputError> {
    use std::io::Seek;
    let cannot_read =
        |e: std::io::Error| InputError::new(path, format!("cannot read: {e}"), "check the file");
    let mut again = reader.get_ref().try_clone().map_err(cannot_read)?;
    let mut objects = crate::store::Objects::default();
    let mut count = 0;
    let split = crate::json_split::split(Checked::without_lines(reader, budget), |object| {
        count += objects.add(object);
    });
    if split == crate::json_split::Split::Done {
        merge_objects(&mut snapshot.objects, objects);
        if count == 0 {
            snapshot.skip(rel, JSON_WITHOUT_OBJECTS);
        } else {
            info!("read {} as {count} Kubernetes objects", esc(&rel));
            snapshot.files_read += 1;
        }
        return Ok(());
    }
    drop(objects);
    debug!("{}: read again the reader's way", esc(&rel));
    again
        .seek(std::io::SeekFrom::Start(start))
        .map_err(cannot_read)?;
    let reader = BufReader::with_capacity(
        1 << 16,
        Checked::new(BufReader::with_capacity(1 << 20, again), budget),
    );
    stream_file(
        snapshot,
        path,
        rel,
        reader,
        Format::Json,
        JSON_WITHOUT_OBJECTS,
    )
}

fn stream_file(
    snapshot: &mut Snapshot,
    path: &Path,
    rel: String,
    reader: impl Read,
    format: Format,
    empty_reason: &str,
) -> Result<(), InputError> {
    let n = stream_objects(snapshot, path, reader, format)?;
    if n == 0 {
        snapshot.skip(rel, empty_reason);
    } else {
        info!("read {} as {n} Kubernetes objects", esc(&rel));
        snapshot.files_read += 1;
    }
    Ok(())
}

/// Streams Kubernetes objects from JSON or YAML into the snapshot; returns how many were read.
fn stream_objects(
    snapshot: &mut Snapshot,
    path: &Path,
    reader: impl Read,
    format: Format,
) -> Result<usize, InputError> {
    let mut count = 0;
    load_reader(reader, format, |object| {
        if object == Object::NotKubernetes && format == Format::Yaml {
            return Err(format!(
                "a YAML document without `kind`: {} holds Kubernetes objects (`kubectl get -o yaml`)",
                path.display()
            ));
        }
        count += snapshot.objects.add(object);
        Ok(())
    })
    .map_err(|e| InputError { path: path.to_path_buf(), ..e })?;
    Ok(count)
}

/// Decodes every object of a JSON or YAML stream and hands it to `sink`. Errors carry the
/// position; their `path` is left empty for the caller to fill in.
pub fn load_reader(
    mut reader: impl Read,
    format: Format,
    mut sink: impl FnMut(Object) -> Result<(), String>,
) -> Result<(), InputError> {
    let no_path = std::path::PathBuf::new();
    match format {
        Format::Json => {
            let stream = serde_json::Deserializer::from_reader(reader).into_iter::<Object>();
            for object in stream {
                let object = object.map_err(|e| json_error(&no_path, &e))?;
                sink(object).map_err(|m| {
                    InputError::new(&no_path, m, "move other files out of cluster/")
                })?;
            }
        }
        Format::Yaml => {
            for object in
                serde_saphyr::read_with_options::<_, Object>(&mut reader, stream_options())
            {
                let object = object.map_err(|e| saphyr_error(&no_path, &e))?;
                sink(object).map_err(|m| {
                    InputError::new(
                        &no_path,
                        m,
                        "move Talos, Omni and Helm files to talos/, omni/ or helm/",
                    )
                })?;
            }
        }
    }
    Ok(())
}

/// Parser budgets for streamed Kubernetes dumps. A `kubectl get -o yaml` List of a large
/// cluster is one document of millions of nodes, so node and byte counts stay open (the input
/// budget bounds them); depth is bounded like everywhere, and aliases, which kubectl never
/// writes, are held to a few small ones (an alias replays its anchor, so a few anchors
/// referenced many times would otherwise multiply the input).
fn stream_options() -> serde_saphyr::Options {
    let limits = Limits::current();
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_reader_input_bytes: None,
            max_events: usize::MAX,
            max_nodes: usize::MAX,
            max_documents: usize::MAX,
            max_total_scalar_bytes: usize::MAX,
            max_depth: limits.max_depth,
            max_aliases: 10_000,
            max_anchors: 10_000,
            max_recorded_anchor_bytes: 1 << 20,
            max_recorded_anchor_events: 100_000,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 100_000,
            max_alias_expansions_per_anchor: 100,
        },
        with_snippet: false,
    }
}

/// A serde-saphyr error as an input error: budgets name the variable that raises them, and no
/// source line or quoted value (which may be a secret) is repeated.
fn saphyr_error(path: &Path, e: &serde_saphyr::Error) -> InputError {
    let limits = Limits::current();
    if let serde_saphyr::Error::IOError { cause } = e
        && let Some(error) = read::input_error_from_io(path, cause)
    {
        return error;
    }
    let message = e.to_string();
    let first = message.lines().next().unwrap_or("invalid YAML");
    let lower = first.to_lowercase();
    let error = if let serde_saphyr::Error::Budget { .. } = e {
        if lower.contains("depth") {
            over(path, limits::MAX_DEPTH, limits.max_depth as u64)
        } else {
            InputError::new(
                path,
                format!(
                    "YAML aliases or anchors over the budget for Kubernetes dumps ({})",
                    scrub(first)
                ),
                "kubectl never writes YAML aliases: regenerate the file with `kubectl get -o yaml`",
            )
        }
    } else if lower.contains("alias") && (lower.contains("limit") || lower.contains("exceed")) {
        InputError::new(
            path,
            format!(
                "YAML aliases over the budget for Kubernetes dumps ({})",
                scrub(first)
            ),
            "kubectl never writes YAML aliases: regenerate the file with `kubectl get -o yaml`",
        )
    } else {
        InputError::new(
            path,
            format!("invalid YAML: {}", scrub(first)),
            "fix the YAML at that position, or regenerate it with `kubectl get -o yaml`",
        )
    };
    match e.location() {
        Some(l) => error.at(l.line() as usize, l.column() as usize),
        None => error,
    }
}

/// Charts whose values cniswap reads (by name, as part of a chart or directory name).
const CNI_CHARTS: [&str; 4] = ["cilium", "tigera-operator", "calico", "flannel"];

/// The chart a values file belongs to: a CNI chart named in the file name
/// (`cilium-values.yaml`), or a directory among the nearest three named exactly like one
/// (`cilium/values.yaml`, `kube-system/cilium/app/values.yaml`; not `cilium-gitops/`, which only
/// names a repository); else the file's own name, or its directory's when it is `values.yaml`.
fn chart_from_file_name(path: &Path) -> Option<String> {
    let stem = path.file_stem()?.to_string_lossy().to_lowercase();
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let dirs: Vec<String> = absolute
        .parent()
        .map(|p| {
            p.components()
                .rev()
                .filter_map(|c| match c {
                    Component::Normal(n) => Some(n.to_string_lossy().to_lowercase()),
                    _ => None,
                })
                .take(3)
                .collect()
        })
        .unwrap_or_default();
    let by_stem = CNI_CHARTS.into_iter().find(|c| stem.contains(c));
    let by_dir = || {
        dirs.iter().find_map(|dir| match dir.as_str() {
            "kube-flannel" => Some("flannel"),
            dir => CNI_CHARTS.into_iter().find(|c| *c == dir),
        })
    };
    if let Some(chart) = by_stem.or_else(by_dir) {
        return Some(chart.to_string());
    }
    let own = stem
        .trim_end_matches("-values")
        .trim_end_matches(".values")
        .to_string();
    Some(match (own.as_str(), dirs.first()) {
        ("values", Some(dir)) => dir.clone(),
        _ => own,
    })
}

/// Whether Helm values are for a CNI chart cniswap checks: by chart name, or by their keys
/// (Cilium's own, or an umbrella chart's `cilium:` section).
pub(crate) fn is_cni_values(chart: &str, values: &YamlNode) -> bool {
    let chart = chart.to_ascii_lowercase();
    CNI_CHARTS.iter().any(|c| chart.contains(c))
        || helm::looks_like_cilium_values(values)
        || values
            .get("cilium")
            .is_some_and(helm::looks_like_cilium_values)
}

fn classify_documents(
    snapshot: &mut Snapshot,
    path: &Path,
    rel: &str,
    area: Area,
    redacted: redact::Redacted,
    is_template: bool,
    lenient: bool,
) -> Result<(), InputError> {
    let redact::Redacted {
        text,
        mut docs,
        paths,
    } = redacted;
    let paths_redacted = paths.len();
    if docs.is_empty() {
        snapshot.skip(rel, "YAML without documents");
        return Ok(());
    }
    let (talos_before, helm_before) = (snapshot.talos.len(), snapshot.helm.len());
    let source_id = u32::try_from(snapshot.sources.len() + 1).unwrap_or(0);
    docs.iter_mut().for_each(|d| d.set_source(source_id));
    let source = Some(text.as_str());
    // Embedded configs (talosctl `spec`, Omni `spec.data`) are redacted where they are parsed;
    // their redacted text is spliced back into the file text kept for rendering findings.
    let mut splices: Vec<(YamlNode, String)> = Vec::new();
    let mut talos_docs = Vec::new();
    let mut used = false;
    let mut not_understood = 0;
    // What each document was read as, for `-v` (the file) and `-vv` (each document).
    let mut read_as: Vec<String> = Vec::new();
    let mut other_charts: Vec<String> = Vec::new();

    for doc in &docs {
        let before = read_as.len();
        cniswap_config::values::check_names(doc).map_err(|e| {
            InputError::new(
                path,
                e.message,
                "a name that reaches commands must follow Kubernetes' rules; fix the resource",
            )
            .at(e.line, e.column)
        })?;
        if crate::values_from::is_helmfile(doc) {
            read_as.push("helmfile (releases and their values files)".into());
            crate::values_from::read_helmfile(snapshot, rel, path, doc);
            used = true;
        } else if crate::values_from::is_kustomization(doc, rel) {
            read_as.push("kustomize kustomization (configMapGenerator, helmCharts)".into());
            crate::values_from::read_kustomization(snapshot, rel, path, doc);
            used = true;
        } else if let Some((node, inner)) = talos::unwrap_talosctl_resource(doc) {
            read_as.push("Talos machine config (talosctl resource)".into());
            let inner = redact::redact_yaml(inner).map_err(|e| {
                InputError::new(
                    path,
                    format!("machine config in `spec` is not valid YAML: {}", e.message),
                    "re-run `talosctl get mc -o yaml`",
                )
                .at(doc.get("spec").map_or(1, |s| s.pos.line), 1)
            })?;
            let mut inner_docs = inner.docs;
            if let Some(spec) = doc.get("spec") {
                cniswap_config::yaml::anchor_embedded(&mut inner_docs, spec, source);
                splices.push((spec.clone(), inner.text));
            }
            let mut summary =
                talos::summarize(rel, "full", &inner_docs, talos::is_full_config(&inner_docs));
            summary.node = node;
            summary.redacted = inner.paths;
            snapshot.talos.push(TalosSource::new(summary, inner_docs));
            used = true;
        } else if omni::is_config_patch(doc) {
            read_as.push("Omni ConfigPatch".into());
            let patch = omni::read_config_patch(doc, source).map_err(|e| {
                InputError::new(path, e.message, "fix the Talos patch in spec.data")
                    .at(e.line, e.column)
            })?;
            if let (Some(holder), Some(data)) = (doc.path(&["spec", "data"]), &patch.redacted_data)
            {
                splices.push((holder.clone(), data.clone()));
            }
            let label = patch
                .id
                .clone()
                .map_or_else(|| rel.to_string(), |id| format!("{rel}#{id}"));
            let mut summary = talos::summarize(&label, "omni-patch", &patch.patch, false);
            summary.redacted = patch.redacted;
            let role = patch.machine_set.as_deref().and_then(|set| {
                if set.ends_with("control-planes") {
                    Some("controlplane".to_string())
                } else if set.ends_with("workers") {
                    Some("worker".to_string())
                } else {
                    None
                }
            });
            snapshot.talos.push(TalosSource {
                omni_cluster: patch.cluster,
                role,
                omni_metadata: doc.get("metadata").cloned(),
                ..TalosSource::new(summary, patch.patch)
            });
            used = true;
        } else if omni::is_template_document(doc) {
            read_as.push("Omni cluster template".into());
            // Whole template handled once below.
            used = true;
        } else if talhelper::is_talconfig(doc) {
            read_as.push("talhelper config".into());
            read_talconfig(snapshot, rel, path, doc, source);
            used = true;
        } else if talos::is_v1alpha1_document(doc) || talos::is_named_document(doc) {
            read_as.push(match talos::document_kind(doc) {
                Some(kind) => format!("Talos {kind} document"),
                None => "Talos v1alpha1 config".into(),
            });
            talos_docs.push(doc.clone());
        } else if let Some((name, tag)) = helm::oci_repository_tag(doc) {
            read_as.push("Flux OCIRepository".into());
            snapshot.oci_tags.insert(name, tag);
            used = true;
        } else if matches!(
            doc.get("kind").and_then(YamlNode::as_str),
            Some("HelmRelease" | "Application")
        ) && let Some(values) = helm::values_of(doc, source)
        {
            let chart = helm::chart_of(doc)
                .or_else(|| helm::chart_ref_of(doc))
                .or_else(|| chart_from_file_name(path))
                .unwrap_or_default();
            let chart_version = helm::chart_version_of(doc)
                .or_else(|| helm::chart_ref_of(doc).map(|name| format!("ociRepository:{name}")));
            if is_cni_values(&chart, &values) || area == Area::Helm {
                read_as.push(format!(
                    "{} with Helm values (chart {chart})",
                    describe(doc)
                ));
                let mut helm_values = HelmValues::new(rel, chart, chart_version, values);
                helm_values.release = true;
                helm_values.namespace = doc
                    .path(&["metadata", "namespace"])
                    .and_then(YamlNode::scalar_text);
                helm_values.values_from = crate::values_from::references(doc);
                snapshot.helm.push(helm_values);
                used = true;
            } else {
                other_charts.push(chart);
            }
        } else if doc.get("kind").is_some() && doc.get("apiVersion").is_some() {
            if doc.get("kind").and_then(YamlNode::as_str) == Some("ConfigMap") {
                crate::values_from::read_config_map(snapshot, rel, doc, source);
            }
            let object: Object = match serde_json::from_value(doc.to_json()) {
                Ok(object) => object,
                // A template's names and CIDRs are expressions until it is rendered: the
                // linter still reads its settings, but it adds nothing to the cluster facts.
                Err(e) if is_template => {
                    snapshot.skip(
                        format!("{rel}:{}", doc.pos.line),
                        format!(
                            "{}: not a cluster object until rendered ({})",
                            describe(doc),
                            scrub(&e.to_string())
                        ),
                    );
                    Object::NotKubernetes
                }
                // In a repository (`lint PATH`) a manifest an API server would refuse as it
                // stands (a kustomize placeholder name `_` that a patch replaces) is noted, and
                // the rest of the file is still read.
                Err(e) if lenient => {
                    snapshot.skip(
                        format!("{rel}:{}", doc.pos.line),
                        format!(
                            "{}: not read as a cluster object ({}); an overlay or generator may complete it",
                            describe(doc),
                            scrub(&e.to_string())
                        ),
                    );
                    Object::NotKubernetes
                }
                Err(e) => {
                    return Err(InputError::new(
                        path,
                        format!("{}: {}", describe(doc), scrub(&e.to_string())),
                        "fix the object, or regenerate it with `kubectl get -o yaml`",
                    )
                    .at(doc.pos.line, doc.pos.column));
                }
            };
            if is_linted_manifest(doc) {
                snapshot.manifests.push(Manifest {
                    file: rel.to_string(),
                    doc: doc.clone(),
                });
                used = true;
            }
            read_as.push(format!("Kubernetes object {}", describe(doc).trim()));
            used |= snapshot.objects.add(object) > 0;
        } else if doc.is_map()
            && (area == Area::Helm
                || rel.to_lowercase().contains("values")
                || helm::looks_like_cilium_values(doc))
        {
            let chart = chart_from_file_name(path).unwrap_or_default();
            if is_cni_values(&chart, doc) || area == Area::Helm {
                read_as.push(format!("Helm values (chart {chart})"));
                snapshot
                    .helm
                    .push(HelmValues::new(rel, chart, None, doc.clone()));
                used = true;
            } else {
                other_charts.push(chart);
            }
        } else {
            not_understood += 1;
        }
        if read_as.len() == before {
            read_as.push("not recognised".into());
        }
        debug!(
            "{}:{}: {}",
            esc(rel),
            doc.pos.line,
            read_as.last().map_or("", String::as_str)
        );
    }

    if docs.iter().any(omni::is_template_document) {
        for doc in docs.iter().filter(|d| omni::is_template_document(d)) {
            match doc.get("kind").and_then(YamlNode::as_str) {
                Some("ControlPlane") => snapshot.declared_roles.insert("controlplane".into()),
                Some("Workers") => snapshot.declared_roles.insert("worker".into()),
                _ => false,
            };
        }
        let template = omni::read_template(&docs, source);
        for patch in &template.patches {
            if !patch.inline.is_empty() {
                let label = format!(
                    "{rel}#{}/{}",
                    patch.scope,
                    patch.name.as_deref().unwrap_or("inline")
                );
                let summary = talos::summarize(&label, "omni-template-patch", &patch.inline, false);
                let role = match patch.scope.as_str() {
                    "ControlPlane" => Some("controlplane".to_string()),
                    "Workers" => Some("worker".to_string()),
                    _ => None,
                };
                snapshot.talos.push(TalosSource {
                    omni_cluster: template.cluster.clone(),
                    role,
                    ..TalosSource::new(summary, patch.inline.clone())
                });
            } else if let Some(file) = &patch.file {
                let role = match patch.scope.as_str() {
                    "ControlPlane" => Some("controlplane"),
                    "Workers" => Some("worker"),
                    _ => None,
                };
                let resolved = resolve_relative(rel, file);
                snapshot.referenced_patches.insert(resolved.clone());
                if let Some(role) = role {
                    snapshot.patch_roles.insert(resolved, role.to_string());
                }
                snapshot.skip(
                    format!("{rel} -> {file}"),
                    "Omni template patch file: read when it is among the inputs",
                );
            }
        }
        snapshot.omni_templates.push(OmniTemplateSource {
            file: rel.to_string(),
            cluster: template.cluster,
            talos_version: template.talos_version,
            kubernetes_version: template.kubernetes_version,
        });
    }

    if !talos_docs.is_empty() {
        let full = talos::is_full_config(&talos_docs);
        let mut summary =
            talos::summarize(rel, if full { "full" } else { "patch" }, &talos_docs, full);
        summary.redacted = paths;
        snapshot.talos.push(TalosSource::new(summary, talos_docs));
        used = true;
    }

    if is_final_values(rel, &text) {
        snapshot.helm[helm_before..]
            .iter_mut()
            .for_each(|h| h.after_migration = true);
    }
    check_settings(snapshot, path, talos_before, helm_before)?;
    tracing::trace!(
        "{}: {} documents, {} secret fields redacted (names only are kept)",
        esc(rel),
        docs.len(),
        paths_redacted
    );
    if used {
        snapshot.files_read += 1;
        let text = splice_embedded(text, &splices);
        snapshot.sources.push(SourceFile::new(rel, text));
        let mut kinds: Vec<&str> = read_as
            .iter()
            .map(String::as_str)
            .filter(|w| *w != "not recognised")
            .collect();
        kinds.dedup();
        info!("read {} as {}", esc(rel), esc(&kinds.join(", ")));
        if not_understood > 0 {
            snapshot.read_in_part(
                rel,
                format!(
                    "{not_understood} {} not recognised (no apiVersion/kind, not Talos, Omni or Helm values)",
                    if not_understood == 1 { "document" } else { "documents" }
                ),
            );
        }
    } else if matches!(area, Area::Talos | Area::Omni) {
        return Err(InputError::new(
            path,
            "neither a Talos machine config/patch nor an Omni resource",
            "talos/ holds `talosctl get mc -o yaml` output or Talos patches; omni/ holds ConfigPatches or cluster templates",
        )
        .at(docs[0].pos.line, docs[0].pos.column));
    } else if let Some(chart) = other_charts.first() {
        snapshot.skip(
            rel,
            format!(
                "Helm values of chart `{chart}`: cniswap checks the values of Cilium, Calico (tigera-operator) and Flannel"
            ),
        );
    } else {
        snapshot.skip(
            rel,
            "not recognised: no Kubernetes objects, Talos or Omni configs, or Helm values",
        );
    }
    Ok(())
}

/// The settings facts and rules read must hold what their fields allow: garbage is an input
/// error at its line, never replaced by a default.
fn check_settings(
    snapshot: &Snapshot,
    path: &Path,
    talos_from: usize,
    helm_from: usize,
) -> Result<(), InputError> {
    use cniswap_config::values;
    let error = |e: values::ValueError| {
        InputError::new(
            path,
            format!("invalid setting: {}", e.message),
            "fix the value; cniswap does not guess what was meant",
        )
        .at(e.line, e.column)
    };
    for source in &snapshot.talos[talos_from..] {
        values::check_talos(&source.docs).map_err(error)?;
    }
    for values in &snapshot.helm[helm_from..] {
        if values.chart == "cilium"
            || (!helm::is_other_cni_chart(&values.chart)
                && helm::looks_like_cilium_values(&values.values))
        {
            values::check_cilium_values(&values.values).map_err(error)?;
        }
    }
    Ok(())
}

/// Replaces the embedded YAML each holder holds in `text` with its redacted form, in one pass
/// over the lines (one pass per holder was quadratic on files of many resources). A block
/// scalar keeps its lines (redaction keeps line structure); any other string is replaced whole.
fn splice_embedded(text: String, splices: &[(YamlNode, String)]) -> String {
    let changed: Vec<&(YamlNode, String)> = splices
        .iter()
        .filter(|(holder, redacted)| holder.as_str().unwrap_or_default() != redacted)
        .collect();
    if changed.is_empty() {
        return text;
    }
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for (holder, redacted) in changed {
        let start = holder.pos.line.saturating_sub(1);
        if holder.pos.block {
            let indent = " ".repeat(holder.pos.column.saturating_sub(1));
            for (i, inner) in redacted.lines().enumerate() {
                if let Some(line) = lines.get_mut(start + i) {
                    *line = if inner.is_empty() {
                        String::new()
                    } else {
                        format!("{indent}{inner}")
                    };
                }
            }
        } else if let Some(line) = lines.get_mut(start) {
            let cut = line
                .char_indices()
                .nth(holder.pos.column.saturating_sub(1))
                .map_or(line.len(), |(i, _)| i);
            line.truncate(cut);
            line.push_str(&format!("\"{}\"", cniswap_config::redact::REDACTED));
        }
    }
    let mut out = lines.join("\n");
    if text.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// `file` as referenced from the file `from` (both relative to the snapshot root), normalised.
pub(crate) fn resolve_relative(from: &str, file: &str) -> String {
    let mut parts: Vec<&str> = from.split('/').collect();
    parts.pop();
    for part in file.split('/') {
        match part {
            "." | "" => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// A talhelper config becomes one Talos source per role it patches, plus the settings it
/// generates itself (`cniConfig`, pod and service networks) as a patch for every node.
fn read_talconfig(
    snapshot: &mut Snapshot,
    rel: &str,
    disk: &Path,
    doc: &YamlNode,
    source: Option<&str>,
) {
    let config = talhelper::read(doc, source);
    for node in doc.get("nodes").map(YamlNode::as_seq).unwrap_or_default() {
        snapshot
            .node_addresses
            .extend(node.get("ipAddress").cloned());
        let control_plane = node.get("controlPlane").and_then(YamlNode::as_bool) == Some(true);
        snapshot.declared_roles.insert(
            if control_plane {
                "controlplane"
            } else {
                "worker"
            }
            .to_string(),
        );
    }
    let mut groups: Vec<(Option<&str>, Vec<YamlNode>)> = vec![(None, Vec::new())];
    groups[0].1.extend(talhelper::generated_patch(doc));
    for (role, patch) in config.inline_patches {
        match groups.iter_mut().find(|(r, _)| *r == role) {
            Some((_, docs)) => docs.push(patch),
            None => groups.push((role, vec![patch])),
        }
    }
    for (role, file) in &config.patch_files {
        let resolved = resolve_relative(rel, file);
        snapshot.referenced_patches.insert(resolved.clone());
        if let Some(role) = role {
            snapshot
                .patch_roles
                .insert(resolved.clone(), role.to_string());
        }
        // Read with the other inputs, or after them (see `read_referenced_patches`).
        let dir = disk.parent().unwrap_or(Path::new(""));
        snapshot
            .talhelper_patch_files
            .insert(resolved, dir.join(file.trim_start_matches("./")));
    }
    for (role, docs) in groups {
        let mut summary = talos::summarize(rel, "talhelper", &docs, false);
        summary.talos_version = config.talos_version.clone();
        summary.kubernetes_version = config.kubernetes_version.clone();
        summary.role = role.map(str::to_string);
        snapshot.talos.push(TalosSource {
            role: role.map(str::to_string),
            ..TalosSource::new(summary, docs)
        });
    }
}

fn describe(doc: &YamlNode) -> String {
    let kind = doc
        .get("kind")
        .and_then(YamlNode::scalar_text)
        .unwrap_or_default();
    let name = doc
        .path(&["metadata", "name"])
        .and_then(YamlNode::scalar_text)
        .unwrap_or_default();
    format!("{kind} {name}")
}

/// What reading `text` back as the snapshot file `rel` yields: for the writer, which must know
/// the objects a copied config file brings back with it.
pub(crate) fn probe(rel: &str, text: &str) -> Snapshot {
    let mut snapshot = Snapshot::default();
    if let Ok(redacted) = redact::redact_yaml(text) {
        let area = area_of(Path::new(rel));
        let _ = classify_documents(
            &mut snapshot,
            Path::new(rel),
            rel,
            area,
            redacted,
            false,
            false,
        );
    }
    snapshot
}

/// Adds Talos YAML that did not come from a file (talosctl output) under the name `label`.
pub fn load_talos_text(snapshot: &mut Snapshot, label: &str, text: &str) -> Result<(), InputError> {
    let redacted = redact::redact_yaml(text).map_err(|e| {
        InputError::new(
            label,
            format!("invalid YAML: {}", e.message),
            "check the talosctl output",
        )
        .at(e.line, e.column)
    })?;
    classify_documents(
        snapshot,
        Path::new(label),
        label,
        Area::Talos,
        redacted,
        false,
        false,
    )
}

#[cfg(test)]
mod tests {
    use super::{chart_from_file_name, is_rollback_file};
    use std::path::Path;

    #[test]
    fn charts_come_from_the_file_or_a_near_directory_named_like_one() {
        let chart = |p: &str| chart_from_file_name(Path::new(p)).unwrap_or_default();
        assert_eq!(chart("helm/cilium.yaml"), "cilium");
        assert_eq!(chart("apps/cilium-values.yaml"), "cilium");
        assert_eq!(chart("kubernetes/cilium/values.yaml"), "cilium");
        assert_eq!(chart("kube-system/cilium/app/values.yaml"), "cilium");
        assert_eq!(chart("kube-system/kube-flannel/values.yaml"), "flannel");
        // A repository named after Cilium does not make every values file Cilium's.
        assert_eq!(
            chart("/home/me/cilium-gitops/apps/ingress/values.yaml"),
            "ingress"
        );
        assert_eq!(chart("/srv/cilium/a/b/c/values.yaml"), "c");
        assert_eq!(chart("apps/ingress-values.yaml"), "ingress");
    }

    #[test]
    fn rollback_files_by_marker_or_name() {
        assert!(is_rollback_file("rollback-disable-flannel.yaml", "a: 1\n"));
        assert!(is_rollback_file(
            "undo.yaml",
            "# Talos patch: undo x\n\n# cniswap:rollback restores Flannel\ncluster: {}\n"
        ));
        // Only the leading comments count: a marker further down is just text.
        assert!(!is_rollback_file(
            "patch.yaml",
            "cluster: {}\n# cniswap:rollback\n"
        ));
        assert!(!is_rollback_file(
            "disable-flannel.yaml",
            "# forward\nx: 1\n"
        ));
    }
}
