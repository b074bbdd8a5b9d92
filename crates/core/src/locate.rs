//! Where natview finds what it ships — the pretrained weights (`models/`) and the built-in demo
//! dataset — at run time, wherever the binary is installed, and where it keeps the user's own
//! files (workspaces of read-only datasets).
//!
//! Shipped files are looked for, in this order:
//! 1. `$NATVIEW_MODELS` (weights) or `$NATVIEW_DEMO` (the demo folder);
//! 2. beside the executable: `<exe dir>/models`, `<exe dir>/demo`;
//! 3. an installation prefix: `<exe dir>/../share/natview/{models,demo}`;
//! 4. the user's data folder: `$XDG_DATA_HOME/natview/{models,demo}` (else
//!    `~/.local/share/natview/…`);
//! 5. the source tree natview was built from — only when the executable sits in that tree's
//!    `target/` folder (or in `$CARGO_TARGET_DIR`), i.e. a development build run in place.
//!
//! A copy of the binary somewhere else therefore never reads files from the build machine, and
//! a missing file is an error that names every place looked ([`NotFound`]).

use std::path::{Path, PathBuf};

/// What natview ships beside its binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shipped {
    /// The pretrained and fine-tuned weights (`models/`).
    Models,
    /// The built-in demo dataset (a folder holding `manifest.csv`).
    Demo,
}

impl Shipped {
    /// The environment variable that names this folder explicitly.
    pub fn env_var(self) -> &'static str {
        match self {
            Shipped::Models => "NATVIEW_MODELS",
            Shipped::Demo => "NATVIEW_DEMO",
        }
    }

    /// The folder's name under an installation (`share/natview/<name>`, the data folder).
    fn installed_name(self) -> &'static str {
        match self {
            Shipped::Models => "models",
            Shipped::Demo => "demo",
        }
    }

    /// The folder in the source tree.
    fn source_path(self) -> &'static str {
        match self {
            Shipped::Models => "models",
            Shipped::Demo => "assets/demo",
        }
    }

    /// What it is, for messages.
    fn describe(self) -> &'static str {
        match self {
            Shipped::Models => "shipped weights",
            Shipped::Demo => "built-in demo",
        }
    }
}

/// A shipped file that is in none of the places natview looks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{what} `{file}` not found; looked in: {}. Install natview's files with `scripts/install.sh PREFIX` \
     (see the README's Install section), put `{folder}/` beside the executable, or set {env_var} to the \
     folder that holds them{hint}",
    looked.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
)]
pub struct NotFound {
    /// What was looked for ("shipped weights", "built-in demo").
    pub what: &'static str,
    /// The file's name within the folder.
    pub file: String,
    /// Every folder looked in, in order.
    pub looked: Vec<PathBuf>,
    /// The folder's installed name (`models`, `demo`).
    pub folder: &'static str,
    /// The environment variable that names the folder.
    pub env_var: &'static str,
    /// An extra sentence (e.g. how to run without the weights).
    pub hint: String,
}

/// The folders searched for `kind`, in order (existing or not).
pub fn search_dirs(kind: Shipped) -> Vec<PathBuf> {
    search_dirs_with(kind, &Environment::current())
}

/// Finds `file` (a name relative to the folder) in the first folder of [`search_dirs`] that
/// holds it.
pub fn find(kind: Shipped, file: &str) -> Result<PathBuf, NotFound> {
    let looked = search_dirs(kind);
    looked
        .iter()
        .map(|dir| dir.join(file))
        .find(|path| path.is_file())
        .ok_or_else(|| NotFound {
            what: kind.describe(),
            file: file.to_string(),
            looked,
            folder: kind.installed_name(),
            env_var: kind.env_var(),
            hint: String::new(),
        })
}

/// The user's data folder for natview: `$XDG_DATA_HOME/natview`, else
/// `$HOME/.local/share/natview` (`None` when neither variable is set).
pub fn user_data_dir() -> Option<PathBuf> {
    Environment::current().user_data_dir()
}

/// What the search depends on, gathered once (so that tests can give their own).
#[derive(Debug, Clone, Default)]
struct Environment {
    models_env: Option<PathBuf>,
    demo_env: Option<PathBuf>,
    exe: Option<PathBuf>,
    xdg_data_home: Option<PathBuf>,
    home: Option<PathBuf>,
    cargo_target_dir: Option<PathBuf>,
    source_tree: PathBuf,
}

impl Environment {
    fn current() -> Self {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Self {
            models_env: var("NATVIEW_MODELS"),
            demo_env: var("NATVIEW_DEMO"),
            exe: std::env::current_exe()
                .ok()
                .map(|p| p.canonicalize().unwrap_or(p)),
            xdg_data_home: var("XDG_DATA_HOME"),
            home: var("HOME"),
            cargo_target_dir: var("CARGO_TARGET_DIR"),
            source_tree: source_tree(),
        }
    }

    fn user_data_dir(&self) -> Option<PathBuf> {
        self.xdg_data_home
            .clone()
            .or_else(|| self.home.as_ref().map(|h| h.join(".local/share")))
            .map(|d| d.join("natview"))
    }

    /// Whether the executable is a development build inside the source tree's build folder.
    fn runs_from_source_tree(&self) -> bool {
        let Some(exe) = &self.exe else {
            return false;
        };
        let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
        let mut build_dirs = vec![canonical(&self.source_tree.join("target"))];
        if let Some(dir) = &self.cargo_target_dir {
            build_dirs.push(canonical(dir));
        }
        build_dirs.iter().any(|dir| exe.starts_with(dir))
    }
}

/// The root of the source tree natview was built from: this crate sits in `crates/core`.
fn source_tree() -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir
        .ancestors()
        .nth(2)
        .unwrap_or(crate_dir)
        .to_path_buf()
}

fn search_dirs_with(kind: Shipped, env: &Environment) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let from_env = match kind {
        Shipped::Models => &env.models_env,
        Shipped::Demo => &env.demo_env,
    };
    dirs.extend(from_env.clone());
    if let Some(exe_dir) = env.exe.as_deref().and_then(Path::parent) {
        dirs.push(exe_dir.join(kind.installed_name()));
        dirs.push(exe_dir.join("../share/natview").join(kind.installed_name()));
    }
    if let Some(data) = env.user_data_dir() {
        dirs.push(data.join(kind.installed_name()));
    }
    if env.runs_from_source_tree() {
        dirs.push(env.source_tree.join(kind.source_path()));
    }
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn environment(exe: &Path) -> Environment {
        Environment {
            exe: Some(exe.to_path_buf()),
            home: Some(PathBuf::from("/home/ana")),
            source_tree: PathBuf::from("/src/natview"),
            ..Environment::default()
        }
    }

    #[test]
    fn an_installed_binary_looks_beside_itself_then_in_share_then_the_data_folder() {
        let env = Environment {
            models_env: Some(PathBuf::from("/opt/weights")),
            ..environment(Path::new("/usr/local/bin/natview"))
        };
        assert_eq!(
            search_dirs_with(Shipped::Models, &env),
            [
                "/opt/weights",
                "/usr/local/bin/models",
                "/usr/local/bin/../share/natview/models",
                "/home/ana/.local/share/natview/models",
            ]
            .map(PathBuf::from)
        );
    }

    #[test]
    fn the_source_tree_is_searched_only_from_its_own_build_folder() {
        let in_tree = environment(Path::new("/src/natview/target/release/natview"));
        let dirs = search_dirs_with(Shipped::Demo, &in_tree);
        assert_eq!(
            dirs.last(),
            Some(&PathBuf::from("/src/natview/assets/demo"))
        );
        let copied = environment(Path::new("/tmp/x/natview"));
        assert!(!search_dirs_with(Shipped::Demo, &copied)
            .iter()
            .any(|d| d.starts_with("/src/natview")));
        let elsewhere = Environment {
            cargo_target_dir: Some(PathBuf::from("/build/t")),
            ..environment(Path::new("/build/t/debug/natview"))
        };
        assert!(search_dirs_with(Shipped::Models, &elsewhere)
            .contains(&PathBuf::from("/src/natview/models")));
    }

    #[test]
    fn xdg_data_home_wins_over_home() {
        let env = Environment {
            xdg_data_home: Some(PathBuf::from("/data")),
            ..environment(Path::new("/bin/natview"))
        };
        assert_eq!(env.user_data_dir(), Some(PathBuf::from("/data/natview")));
    }

    #[test]
    fn a_missing_file_names_every_place_looked_and_how_to_install() {
        let err = NotFound {
            what: "shipped weights",
            file: "x.safetensors".into(),
            looked: vec![PathBuf::from("/a/models"), PathBuf::from("/b/models")],
            folder: "models",
            env_var: "NATVIEW_MODELS",
            hint: String::new(),
        }
        .to_string();
        assert!(err.contains("/a/models, /b/models"), "{err}");
        assert!(err.contains("scripts/install.sh"), "{err}");
        assert!(err.contains("NATVIEW_MODELS"), "{err}");
    }
}
