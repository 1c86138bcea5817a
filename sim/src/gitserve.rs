//! Git smart-HTTP server (placeholder until built).
/// Flags of `mwsim git-serve`.
#[derive(clap::Args, Debug)]
pub struct GitServeArgs {}
/// Serves until interrupted.
pub async fn serve(_args: GitServeArgs) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
