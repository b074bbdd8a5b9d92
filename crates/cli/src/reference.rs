//! The command-line reference, `docs/cli.md`, generated from the clap definitions: the long
//! help of `natview` and of every subcommand, so the page cannot drift from the binary. A test
//! fails when the file is stale; `NATVIEW_WRITE_CLI_DOCS=1 cargo test -p natview-cli` rewrites it.

use clap::CommandFactory;

/// The Markdown page: a heading and the long help of each command, depth first.
pub fn markdown() -> String {
    let mut page = String::from(
        "# natview command-line reference\n\n\
         Generated from the command definitions (`crates/cli/src/reference.rs`; a test fails \
         when this page is stale, `NATVIEW_WRITE_CLI_DOCS=1 cargo test -p natview-cli` \
         rewrites it). Options marked global apply to every subcommand.\n",
    );
    let mut command = crate::Cli::command();
    command.build();
    append(&mut page, &mut command, "natview");
    page
}

/// Appends `command`'s section and those of its subcommands.
fn append(page: &mut String, command: &mut clap::Command, path: &str) {
    let help = command.render_long_help().to_string();
    page.push_str(&format!(
        "\n## `{path}`\n\n```text\n{}\n```\n",
        help.trim_end()
    ));
    let names: Vec<String> = command
        .get_subcommands()
        .filter(|s| s.get_name() != "help")
        .map(|s| s.get_name().to_string())
        .collect();
    for name in names {
        if let Some(sub) = command.find_subcommand_mut(&name) {
            append(page, sub, &format!("{path} {name}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn docs_cli_md_is_the_generated_reference() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/cli.md");
        let generated = markdown();
        if std::env::var_os("NATVIEW_WRITE_CLI_DOCS").is_some() {
            std::fs::write(&path, &generated).expect("write docs/cli.md");
            return;
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == generated,
            "docs/cli.md is stale: run `NATVIEW_WRITE_CLI_DOCS=1 cargo test -p natview-cli` \
             and commit it"
        );
    }

    #[test]
    fn the_reference_lists_user_commands_and_no_benchmark() {
        let page = markdown();
        for command in ["natview embed", "natview finetune", "natview labels export"] {
            assert!(
                page.contains(&format!("## `{command}`")),
                "{command} missing"
            );
        }
        assert!(
            !page.contains("## `natview bench"),
            "benchmarks belong to natview-bench"
        );
    }
}
