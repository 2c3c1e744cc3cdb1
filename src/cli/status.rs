//! `factbot status`: the running bot's `/healthz` at `[metrics] listen`,
//! printed; the exit code says healthy (0), unhealthy (1) or that no bot
//! answers there, or the config has no `[metrics]` (2).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use super::{usage, Context, Failure};

// No `///` here: the `status` variant's doc comment in main.rs is the help.
#[derive(clap::Args)]
pub struct Args {
    /// Give up waiting for the answer after this many seconds.
    #[arg(long, default_value_t = 5)]
    pub timeout: u64,
}

/// `factbot status [--timeout S]`.
pub fn run(ctx: &Context, args: Args) -> Result<(), Failure> {
    let addr = health_addr(ctx)?;
    let url = format!("http://{addr}/healthz");
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(args.timeout.max(1)))
        .redirects(0)
        .build();
    match agent.get(&url).call() {
        Ok(r) => {
            outln!("{}", r.into_string()?.trim_end())?;
            Ok(())
        }
        Err(ureq::Error::Status(503, r)) => {
            outln!("{}", r.into_string()?.trim_end())?;
            Err(Failure {
                code: 1,
                error: anyhow::anyhow!("the bot at {addr} is unhealthy"),
            })
        }
        Err(ureq::Error::Status(code, _)) => Err(usage(format!(
            "{url} answered HTTP {code}: is [metrics] listen this bot's address?"
        ))),
        Err(ureq::Error::Transport(e)) => Err(usage(format!(
            "no bot answers at {addr} ([metrics] listen): {e}"
        ))),
    }
}

/// Where the bot answers: `[metrics] listen`, on loopback if that is
/// every address.
fn health_addr(ctx: &Context) -> Result<SocketAddr, Failure> {
    let m = ctx.cfg.metrics.as_ref().ok_or_else(|| {
        usage("factbot status asks the running bot's /healthz: set [metrics] listen in the config and pass it with --config (or FACTBOT_CONFIG)")
    })?;
    let mut addr: SocketAddr = m.listen.parse().map_err(|_| {
        usage(format!(
            "[metrics] listen {:?} is not an address:port",
            m.listen
        ))
    })?;
    // A bot listening on every address answers on loopback too.
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
        });
    }
    Ok(addr)
}
