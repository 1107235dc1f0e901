//! `wsport-bench report DIR`: regenerate every document of a result directory from its raw
//! runs, so that nothing in it is edited by hand and a directory can be re-rendered after the
//! report changes:
//!
//! - `runs.jsonl`: every run, one compact JSON document per line, in the report's order
//!   (workload, scenario, server, start time). A directory that keeps only this file (no
//!   `*.json`) is read back from it, and then it is left as it is.
//! - `plots/*.svg`: the plots of [`crate::plot`]; the folder belongs to the report, so SVGs
//!   from an earlier report that no longer have runs are removed.
//! - `summary.md`: the tables of [`crate::summary`], linking the plots.

use std::path::{Path, PathBuf};

use crate::plot::{self, PLOTS_DIR};
use crate::runs::{self, RunsError, ServerOrder, RUNS_JSONL};
use crate::{summary, sweep};

/// What [`regenerate`] wrote.
#[derive(Debug)]
pub struct Published {
    /// The Markdown summary (also in `summary.md`).
    pub summary: String,
    /// Every file written, in the order written.
    pub files: Vec<PathBuf>,
    /// Runs read.
    pub runs: usize,
}

/// Read the runs of `dir` and write `runs.jsonl`, `plots/*.svg` and `summary.md` into it;
/// `baseline` names the server the ratios are against.
pub fn regenerate(dir: &Path, baseline: &str) -> Result<Published, RunsError> {
    let (runs, from_jsonl) = runs::load(dir)?;
    let mut files = Vec::new();
    if !from_jsonl {
        let mut text = String::new();
        for run in &runs {
            // A Value always serialises.
            text.push_str(&serde_json::to_string(&run.doc).unwrap_or_default());
            text.push('\n');
        }
        files.push(write(&dir.join(RUNS_JSONL), &text)?);
    }
    let order = ServerOrder::of(&runs, baseline);
    let mut plots = plot::plots(&runs, &order);
    plots.extend(sweep::plots(&runs, &order));
    plots.extend(crate::scale::plots(&runs, &order));
    let plots_dir = dir.join(PLOTS_DIR);
    remove_old_plots(&plots_dir)?;
    if !plots.is_empty() {
        std::fs::create_dir_all(&plots_dir).map_err(|source| RunsError::Write {
            file: plots_dir.clone(),
            source,
        })?;
    }
    for p in &plots {
        files.push(write(&plots_dir.join(&p.file), &p.svg)?);
    }
    let text = summary::render(&runs, baseline, &plots);
    files.push(write(&dir.join("summary.md"), &text)?);
    Ok(Published {
        summary: text,
        files,
        runs: runs.len(),
    })
}

/// Write beside, then rename: an interrupted report never leaves half a file behind.
fn write(path: &Path, text: &str) -> Result<PathBuf, RunsError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|source| RunsError::Write {
            file: path.to_owned(),
            source,
        })?;
    Ok(path.to_owned())
}

fn remove_old_plots(plots_dir: &Path) -> Result<(), RunsError> {
    let Ok(entries) = std::fs::read_dir(plots_dir) else {
        return Ok(());
    };
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        if path.extension().is_some_and(|ext| ext == "svg") {
            std::fs::remove_file(&path).map_err(|source| RunsError::Write {
                file: path.clone(),
                source,
            })?;
        }
    }
    Ok(())
}
