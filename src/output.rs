//! Standard output in Unix pipes, for every command at once.
//!
//! A reader that stops early (`paytrace patterns | head`) closes the pipe, and the next write
//! to stdout fails with `EPIPE` (Rust ignores `SIGPIPE`, and `unsafe` code that would restore
//! it is not allowed here). Both ways a command writes end the process quietly with status 0:
//!
//! - `write!` through [`stdout`]: the error is tagged [`StdoutClosed`], and `main` recognises
//!   the tag ([`is_stdout_closed`]); a broken pipe on a socket (a node, a webhook) is not
//!   tagged and stays an error;
//! - `print!`/`println!`: the standard library panics with `failed printing to stdout: Broken
//!   pipe (os error 32)`; [`install_panic_hook`] keeps that panic silent and [`run_catching`]
//!   turns it into status 0 after the stack has unwound (stores are closed normally).

use std::{
    any::Any,
    io::{self, Write},
    panic::AssertUnwindSafe,
    process::ExitCode,
};

/// Marks an `EPIPE` on standard output (the reader went away), as opposed to any other I/O
/// error.
#[derive(Debug)]
pub struct StdoutClosed;

impl std::fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("standard output closed by its reader")
    }
}

impl std::error::Error for StdoutClosed {}

/// Standard output, locked, whose broken-pipe errors carry [`StdoutClosed`].
pub struct Stdout(io::StdoutLock<'static>);

/// Locks standard output for a command's results.
pub fn stdout() -> Stdout {
    Stdout(io::stdout().lock())
}

fn tag(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::BrokenPipe {
        io::Error::new(io::ErrorKind::BrokenPipe, StdoutClosed)
    } else {
        e
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map_err(tag)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf).map_err(tag)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().map_err(tag)
    }
}

/// Whether `e` (anywhere in its chain) is a write to a closed standard output.
pub fn is_stdout_closed(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.is::<StdoutClosed>()
            || c.downcast_ref::<io::Error>()
                .and_then(|io| io.get_ref())
                .is_some_and(|inner| inner.is::<StdoutClosed>())
            // serde_json keeps the writer's io::Error inside and exposes only its kind; a
            // result is serialised into a writer only for standard output.
            || c.downcast_ref::<serde_json::Error>()
                .is_some_and(|j| j.io_error_kind() == Some(io::ErrorKind::BrokenPipe))
    })
}

/// Whether a panic payload is the standard library's `print!` failing on a closed stdout
/// (`EPIPE` is 32 on Linux, macOS and the BSDs).
fn is_print_pipe_panic(payload: &(dyn Any + Send)) -> bool {
    let msg = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied());
    msg.is_some_and(|m| m.starts_with("failed printing to stdout") && m.contains("(os error 32)"))
}

/// Keeps the panic of `print!` on a closed stdout silent; every other panic is reported as
/// before.
pub fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !is_print_pipe_panic(info.payload()) {
            default(info);
        }
    }));
}

/// Runs `f`; a `print!` on a closed stdout ends it with status 0 (any other panic goes on).
pub fn run_catching(f: impl FnOnce() -> ExitCode) -> ExitCode {
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(code) => code,
        Err(payload) if is_print_pipe_panic(payload.as_ref()) => ExitCode::SUCCESS,
        Err(payload) => std::panic::resume_unwind(payload),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_only_a_closed_stdout() {
        let closed = anyhow::Error::from(tag(io::Error::from(io::ErrorKind::BrokenPipe)))
            .context("printing the report");
        assert!(is_stdout_closed(&closed));
        // A broken pipe elsewhere (a socket) is an error like any other.
        let socket = anyhow::Error::from(io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(!is_stdout_closed(&socket));
        let other = anyhow::Error::from(tag(io::Error::from(io::ErrorKind::StorageFull)));
        assert!(!is_stdout_closed(&other));
    }

    #[test]
    fn recognises_the_print_panic() {
        let p: Box<dyn Any + Send> =
            Box::new("failed printing to stdout: Broken pipe (os error 32)".to_owned());
        assert!(is_print_pipe_panic(p.as_ref()));
        let p: Box<dyn Any + Send> = Box::new("index out of bounds".to_owned());
        assert!(!is_print_pipe_panic(p.as_ref()));
    }
}
