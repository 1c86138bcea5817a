//! The fake MoneyWorks Datacentre (placeholder until built).
pub mod cli {
    //! `mwsim serve`.
    /// Flags of `mwsim serve`.
    #[derive(clap::Args, Debug)]
    pub struct ServeArgs {}
    /// Runs the fake server until interrupted.
    pub async fn serve(_args: ServeArgs) -> anyhow::Result<()> {
        anyhow::bail!("not built yet")
    }
}
