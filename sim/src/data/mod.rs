//! Dataset generator and anonymizer (placeholder until built).
/// Flags of `mwsim generate`.
#[derive(clap::Args, Debug)]
pub struct GenerateArgs {}
/// Flags of `mwsim anonymize`.
#[derive(clap::Args, Debug)]
pub struct AnonymizeArgs {}
/// Runs `mwsim generate`.
pub fn generate_cmd(_args: GenerateArgs) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
/// Runs `mwsim anonymize`.
pub fn anonymize_cmd(_args: AnonymizeArgs) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
