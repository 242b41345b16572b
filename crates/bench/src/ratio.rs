//! `--ratio`: `cniswap inspect` against Python's `json.load` on the same synthetic snapshot.
//!
//! json.load is the floor of "reading JSON" most people know: the C decoder building every
//! object. inspect reads the same bytes, keeps a few fields of each object, checks every name
//! and redacts secrets; it should take a small fraction of json.load's time. Each side runs
//! `runs` times as a child process (wall time, CPU time and peak RSS from wait4); the medians
//! are compared, and the last line says whether the goals of issue 19 are met.

use std::path::Path;

/// Python reading every JSON file of the snapshot's `cluster/` with `json.load`.
const PYTHON: &str = "import json, sys\nfor f in sys.argv[1:]:\n    with open(f, 'rb') as h:\n        json.load(h)\n";

/// inspect must take less than this fraction of json.load's wall time (issue 19).
const GOAL_RATIO: f64 = 0.1;
/// ... and peak below this many MiB of resident memory.
const GOAL_PEAK_MIB: f64 = 250.0;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The medians and peaks of one side's runs.
#[derive(Default)]
struct Side {
    wall: Vec<f64>,
    cpu: Vec<f64>,
    peak_kib: i64,
}

impl Side {
    fn add(&mut self, m: &crate::Measured) {
        self.wall.push(m.seconds);
        self.cpu.push(m.cpu_seconds);
        self.peak_kib = self.peak_kib.max(m.peak_kib);
    }

    fn peak_mib(&self) -> f64 {
        self.peak_kib as f64 / 1024.0
    }
}

/// Runs the comparison. With `keep`, the snapshot is written to that directory once (reused
/// while `DIR.params` says it was made with the same sizes) and left there; else it lives in a
/// temporary directory.
pub fn run(
    binary: &Path,
    nodes: usize,
    pods_per_node: usize,
    runs: usize,
    keep: Option<&Path>,
) -> Result<(), String> {
    let python =
        which("python3").ok_or("python3 not found on PATH (Debian: apt-get install python3)")?;
    let dir = match keep {
        Some(dir) => dir.to_path_buf(),
        None => std::env::temp_dir().join(format!("cniswap-bench-ratio-{nodes}")),
    };
    let params_file = dir.with_extension("params");
    let params = format!("{nodes} {pods_per_node}\n");
    let reuse = keep.is_some()
        && dir.join("cluster").is_dir()
        && std::fs::read_to_string(&params_file).is_ok_and(|p| p == params);
    if !reuse {
        let _ = std::fs::remove_dir_all(&dir);
        crate::synth::write_snapshot(&dir, nodes, pods_per_node, crate::synth::Format::Json)
            .map_err(|e| format!("cannot write {}: {e}", dir.display()))?;
        if keep.is_some() {
            std::fs::write(&params_file, params)
                .map_err(|e| format!("cannot write {}: {e}", params_file.display()))?;
        }
    }
    let result = compare(binary, &python, &dir, nodes, nodes * pods_per_node, runs);
    if keep.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn compare(
    binary: &Path,
    python: &Path,
    dir: &Path,
    nodes: usize,
    pods: usize,
    runs: usize,
) -> Result<(), String> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("cluster"))
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    let size: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let mut python_args: Vec<&std::ffi::OsStr> = vec!["-c".as_ref(), PYTHON.as_ref()];
    python_args.extend(files.iter().map(|f| f.as_os_str()));
    let inspect_args: [&std::ffi::OsStr; 5] = [
        "inspect".as_ref(),
        "--snapshot".as_ref(),
        dir.as_os_str(),
        "-o".as_ref(),
        "json".as_ref(),
    ];
    let (mut inspect, mut load) = (Side::default(), Side::default());
    for _ in 0..runs {
        let m = crate::measure_with_cpu(binary, &inspect_args)?;
        if !matches!(m.code, 0 | 1) {
            return Err(format!("cniswap inspect exited {}", m.code));
        }
        inspect.add(&m);
        let m = crate::measure_with_cpu(python, &python_args)?;
        if m.code != 0 {
            return Err(format!("python3 json.load exited {}", m.code));
        }
        load.add(&m);
    }
    let (wall, cpu) = (median(inspect.wall.clone()), median(inspect.cpu.clone()));
    let (load_wall, load_cpu) = (median(load.wall.clone()), median(load.cpu.clone()));
    println!(
        "inspect vs json.load: {nodes} nodes, {pods} pods, {:.1} MiB of JSON, median of {runs}",
        size as f64 / 1048576.0
    );
    println!(
        "  cniswap inspect -o json  {wall:>7.2} s  (CPU {cpu:>6.2} s)  peak RSS {:>6.1} MiB",
        inspect.peak_mib()
    );
    println!(
        "  python3 json.load        {load_wall:>7.2} s  (CPU {load_cpu:>6.2} s)  peak RSS {:>6.1} MiB",
        load.peak_mib()
    );
    let ratio = wall / load_wall;
    println!(
        "  ratio (inspect / json.load): {ratio:.3} wall, {:.3} CPU",
        cpu / load_cpu
    );
    let time_ok = ratio < GOAL_RATIO;
    let peak_ok = inspect.peak_mib() < GOAL_PEAK_MIB;
    println!(
        "  goal (issue 19): ratio < {GOAL_RATIO} {}, peak < {GOAL_PEAK_MIB:.0} MiB {}: {}",
        if time_ok { "met" } else { "MISSED" },
        if peak_ok { "met" } else { "MISSED" },
        if time_ok && peak_ok { "PASS" } else { "FAIL" }
    );
    Ok(())
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file())
}
