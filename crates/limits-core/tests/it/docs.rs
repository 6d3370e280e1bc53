//! Every YAML example of `docs/configuration-examples.md` loads.

use limits_core::Policy;

const EXAMPLES: &str = include_str!("../../../../docs/configuration-examples.md");

/// The ```yaml blocks of a Markdown text.
fn yaml_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.trim()) {
            (None, "```yaml") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

#[test]
fn every_example_loads() {
    let blocks = yaml_blocks(EXAMPLES);
    assert!(blocks.len() >= 8, "{} blocks", blocks.len());
    for block in blocks {
        if let Err(err) = Policy::from_yaml(&block) {
            panic!("{err}\n{block}");
        }
    }
}
