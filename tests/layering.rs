//! Dependencies point only downward (docs/ARCHITECTURE.md):
//! `cli -> zoo / serve -> run -> report -> train / eval / sample -> config -> models -> nn`, with
//! the leaves (`data`, `viz`, `units`, `error`, `progress`, `atomic`, `seeded`, `allocator`,
//! `layout`) importing only leaves. Every top-level module has a rank: a new one fails here
//! until it is given one.
//! This test reads every `crate::` path in the code (comments excluded) and fails on a
//! dependency that points up or sideways.

use std::path::Path;

fn rank(module: &str) -> Option<usize> {
    Some(match module {
        "error" | "units" | "progress" | "atomic" | "seeded" | "allocator" | "data" | "viz"
        | "layout" => 0,
        "nn" => 1,
        "models" => 2,
        "config" => 3,
        "train" | "eval" | "sample" => 4,
        "report" => 5,
        "run" => 6,
        "zoo" | "serve" | "analysis" => 7,
        "cli" => 8,
        _ => return None,
    })
}

fn visit(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            visit(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

#[test]
fn dependencies_point_downward() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    visit(&src, &mut files);
    let mut violations = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let first = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if first == "lib" || first == "main" {
            continue;
        }
        let Some(own) = rank(&first) else {
            violations.push(format!(
                "{}: module {first} has no rank",
                relative.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for (i, _) in code.match_indices("crate::") {
                let rest = &code[i + 7..];
                // `crate::a::…` or `crate::{a, b::…}` (top-level names of the group).
                let targets: Vec<String> = match rest.strip_prefix('{') {
                    Some(group) => group
                        .split(['}'])
                        .next()
                        .unwrap_or("")
                        .split(',')
                        .map(|part| {
                            part.trim()
                                .chars()
                                .take_while(|c| c.is_alphanumeric() || *c == '_')
                                .collect()
                        })
                        .collect(),
                    None => vec![
                        rest.chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect(),
                    ],
                };
                for target in targets {
                    let Some(theirs) = rank(&target) else {
                        continue;
                    };
                    let allowed = target == first || theirs < own || (own == 0 && theirs == 0);
                    if !allowed {
                        violations.push(format!(
                            "{}:{}: {first} -> {target}",
                            relative.display(),
                            number + 1
                        ));
                    }
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "dependencies pointing up or sideways:\n{}",
        violations.join("\n")
    );
}
