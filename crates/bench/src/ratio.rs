//! `--ratio`: `cniswap inspect` against Python's `json.load` on the same synthetic snapshot.
//!
//! json.load is the floor of "reading JSON" most people know: the C decoder building every
//! object. inspect reads the same bytes, keeps a few fields of each object, checks every name
//! and redacts secrets; it should take a small fraction of json.load's time. Each side runs
//! `runs` times as a child process (wall time, peak RSS from wait4); the medians are compared.

use std::path::Path;

/// Python reading every JSON file of the snapshot's `cluster/` with `json.load`.
const PYTHON: &str = "import json, sys\nfor f in sys.argv[1:]:\n    with open(f, 'rb') as h:\n        json.load(h)\n";

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

pub fn run(binary: &Path, nodes: usize, pods_per_node: usize, runs: usize) -> Result<(), String> {
    let python =
        which("python3").ok_or("python3 not found on PATH (Debian: apt-get install python3)")?;
    let dir = std::env::temp_dir().join(format!("cniswap-bench-ratio-{nodes}"));
    let _ = std::fs::remove_dir_all(&dir);
    let size = crate::synth::write_snapshot(&dir, nodes, pods_per_node, crate::synth::Format::Json)
        .map_err(|e| format!("cannot write {}: {e}", dir.display()))?;
    let result = (|| {
        let mut files: Vec<_> = std::fs::read_dir(dir.join("cluster"))
            .map_err(|e| e.to_string())?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort();
        let mut python_args: Vec<&std::ffi::OsStr> = vec!["-c".as_ref(), PYTHON.as_ref()];
        python_args.extend(files.iter().map(|f| f.as_os_str()));
        let inspect_args: [&std::ffi::OsStr; 5] = [
            "inspect".as_ref(),
            "--snapshot".as_ref(),
            dir.as_os_str(),
            "-o".as_ref(),
            "json".as_ref(),
        ];
        let (mut inspect, mut load) = (vec![], vec![]);
        let (mut inspect_rss, mut load_rss) = (0, 0);
        for _ in 0..runs {
            let (seconds, rss, code) = crate::measure(binary, &inspect_args)?;
            if !matches!(code, 0 | 1) {
                return Err(format!("cniswap inspect exited {code}"));
            }
            inspect.push(seconds);
            inspect_rss = inspect_rss.max(rss);
            let (seconds, rss, code) = crate::measure(&python, &python_args)?;
            if code != 0 {
                return Err(format!("python3 json.load exited {code}"));
            }
            load.push(seconds);
            load_rss = load_rss.max(rss);
        }
        let (inspect, load) = (median(inspect), median(load));
        println!(
            "inspect vs json.load: {nodes} nodes, {} pods, {:.1} MiB of JSON, median of {runs}",
            nodes * pods_per_node,
            size as f64 / 1048576.0
        );
        println!(
            "  cniswap inspect -o json  {inspect:>7.2} s  peak RSS {:>6.1} MiB",
            inspect_rss as f64 / 1024.0
        );
        println!(
            "  python3 json.load        {load:>7.2} s  peak RSS {:>6.1} MiB",
            load_rss as f64 / 1024.0
        );
        println!("  ratio (inspect / json.load): {:.3}", inspect / load);
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file())
}
