//! he-lab: a simulated hosted-engine host and engine (work in progress).

fn main() -> anyhow::Result<()> {
    anyhow::bail!("he-lab is not built yet")
}
