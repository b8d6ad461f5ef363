//! The processes `cargo xtask run` starts, and how they are stopped.
//!
//! Every service is started in a process group of its own, and on Linux the
//! task makes itself a child subreaper, so a grandchild whose parent dies
//! (workerd, when wrangler's node goes first) is re-parented to the task
//! instead of to init. Teardown then reaches everything: it sends SIGTERM to
//! each group and to every descendant, waits a grace period for them to
//! exit, sends SIGKILL to whatever is left, and reaps what it re-parented.
//!
//! The `/proc` readers are also what `cargo xtask test` uses to show that a
//! run leaves nothing behind.

use std::collections::BTreeSet;
use std::process::Child;
use std::time::{Duration, Instant};

pub const SIGINT: i32 = 2;
pub const SIGKILL: i32 = 9;
pub const SIGTERM: i32 = 15;

#[cfg(unix)]
mod sys {
    extern "C" {
        pub fn kill(pid: i32, sig: i32) -> i32;
        pub fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
    }
    #[cfg(target_os = "linux")]
    extern "C" {
        pub fn prctl(option: i32, arg2: u64, arg3: u64, arg4: u64, arg5: u64) -> i32;
    }
    pub const WNOHANG: i32 = 1;
    #[cfg(target_os = "linux")]
    pub const PR_SET_CHILD_SUBREAPER: i32 = 36;
}

/// Sends `signal` to a process, or to a process group when `pid` is negative.
/// A process that is already gone is not an error.
///
/// This calls kill(2) itself: procps-ng 4's `/usr/bin/kill -TERM -<pgid>`
/// reads the group as an option and calls `kill(-1, SIGTERM)`, which signals
/// every process on the machine (what this task's teardown used to run).
#[cfg(unix)]
pub fn signal(pid: i32, signal: i32) {
    if !targets_one_process_or_group(pid) {
        return;
    }
    // SAFETY: kill(2) has no memory effects; a bad pid only returns ESRCH.
    unsafe {
        sys::kill(pid, signal);
    }
}

#[cfg(not(unix))]
pub fn signal(_: i32, _: i32) {}

/// Whether kill(2) on `pid` reaches one process or one group of them, not
/// every process (-1), this task's own group (0) or init (1, -1).
fn targets_one_process_or_group(pid: i32) -> bool {
    pid.unsigned_abs() > 1
}

/// Whether a process or (negative `pid`) process group still exists.
#[cfg(unix)]
fn exists(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence and permission.
    unsafe { sys::kill(pid, 0) == 0 }
}

/// Orphans in this task's subtree come back to it rather than going to
/// init, so teardown can find, stop and reap them. Linux only; elsewhere
/// teardown relies on the process groups.
pub fn become_subreaper() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag and touches no memory.
    unsafe {
        sys::prctl(sys::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
}

pub fn own_pid() -> i32 {
    std::process::id() as i32
}

/// One process as `/proc/<pid>/stat` describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Proc {
    pub pid: i32,
    pub ppid: i32,
    pub pgrp: i32,
    /// Clock ticks after boot: with `pid`, names a process even once the
    /// pid is reused.
    pub start_time: u64,
    pub zombie: bool,
}

impl Proc {
    /// The pid and start time: this process and no later one with its pid.
    pub fn identity(&self) -> (i32, u64) {
        (self.pid, self.start_time)
    }
}

/// Whether the process of this `(pid, start time)` still runs (a later
/// process with the same pid does not count).
pub fn is_running((pid, start_time): (i32, u64)) -> bool {
    read_proc(pid).is_some_and(|now| now.start_time == start_time && !now.zombie)
}

/// Parses `/proc/<pid>/stat`; the command name may hold spaces and
/// parentheses, so fields are counted from the last `)`.
pub fn parse_stat(stat: &str) -> Option<Proc> {
    let (head, tail) = stat.rsplit_once(')')?;
    let pid = head.split_whitespace().next()?.parse().ok()?;
    let fields: Vec<&str> = tail.split_whitespace().collect();
    // fields[0] is field 3 (state); starttime is field 22.
    Some(Proc {
        pid,
        ppid: fields.get(1)?.parse().ok()?,
        pgrp: fields.get(2)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
        zombie: *fields.first()? == "Z",
    })
}

fn read_proc(pid: i32) -> Option<Proc> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Every process on the machine (empty where there is no `/proc`).
pub fn all() -> Vec<Proc> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter_map(read_proc)
        .collect()
}

/// The processes below `root` (children, their children, ...), by parent
/// links in one reading of `/proc`.
pub fn descendants(root: i32) -> Vec<Proc> {
    let procs = all();
    let mut found: Vec<Proc> = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for p in procs.iter().filter(|p| p.ppid == parent) {
            if !found.iter().any(|f| f.pid == p.pid) {
                found.push(*p);
                frontier.push(p.pid);
            }
        }
    }
    found.sort();
    found
}

/// Processes whose environment holds `key=value`: how a test finds what a
/// run started even after it left the run's process tree.
pub fn with_env(key: &str, value: &str) -> Vec<Proc> {
    let needle = format!("{key}={value}");
    all()
        .into_iter()
        .filter(|p| !p.zombie)
        .filter(|p| {
            std::fs::read(format!("/proc/{}/environ", p.pid))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == needle.as_bytes()))
        })
        .collect()
}

/// The TCP ports that these processes listen on (IPv4 and IPv6), matched by
/// socket inode between `/proc/<pid>/fd` and `/proc/net/tcp{,6}`.
pub fn listening_ports(pids: &[i32]) -> BTreeSet<u16> {
    let mut inodes = BTreeSet::new();
    for pid in pids {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let target = target.to_string_lossy();
            if let Some(inode) = target
                .strip_prefix("socket:[")
                .and_then(|s| s.strip_suffix(']'))
                .and_then(|s| s.parse::<u64>().ok())
            {
                inodes.insert(inode);
            }
        }
    }
    listening_sockets()
        .into_iter()
        .filter(|(_, inode)| inodes.contains(inode))
        .map(|(port, _)| port)
        .collect()
}

/// Every listening TCP socket on the machine: (port, inode).
pub fn listening_sockets() -> Vec<(u16, u64)> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .flat_map(|table| parse_listening(&table))
        .collect()
}

/// Rows of a `/proc/net/tcp` table in state LISTEN (`0A`): (port, inode).
pub fn parse_listening(table: &str) -> Vec<(u16, u64)> {
    table
        .lines()
        .skip(1)
        .filter_map(|row| {
            let cols: Vec<&str> = row.split_whitespace().collect();
            if cols.get(3) != Some(&"0A") {
                return None;
            }
            let port = u16::from_str_radix(cols.get(1)?.rsplit_once(':')?.1, 16).ok()?;
            Some((port, cols.get(9)?.parse().ok()?))
        })
        .collect()
}

/// The services one run started, stopped together.
pub struct Services {
    children: Vec<(String, Child)>,
    grace: Duration,
}

impl Services {
    pub fn new(grace: Duration) -> Self {
        Services {
            children: Vec::new(),
            grace,
        }
    }

    /// Adds a child that was spawned in a process group of its own.
    pub fn push(&mut self, name: &str, child: Child) {
        self.children.push((name.to_string(), child));
    }

    /// Stops every service and everything they started: SIGTERM to each
    /// group and to every descendant of this task, up to `grace` for them to
    /// go, then SIGKILL; every child and re-parented orphan is reaped.
    pub fn stop(&mut self) {
        if self.children.is_empty() {
            return;
        }
        self.signal_all(SIGTERM);
        let deadline = Instant::now() + self.grace;
        while !self.all_gone() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        if !self.all_gone() {
            let left: Vec<String> = self
                .live_processes()
                .iter()
                .map(|p| format!("{} {}", p.pid, command_name(p.pid)))
                .collect();
            eprintln!(
                "run: still running after {}s ({}); sending SIGKILL",
                self.grace.as_secs(),
                left.join(", ")
            );
            self.signal_all(SIGKILL);
            let deadline = Instant::now() + Duration::from_secs(5);
            while !self.all_gone() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        for (name, mut child) in self.children.drain(..).rev() {
            let _ = child.wait();
            eprintln!("run: stopped {name}");
        }
        reap_orphans();
    }

    fn signal_all(&mut self, sig: i32) {
        for (_, child) in &self.children {
            signal(-(child.id() as i32), sig);
        }
        for p in descendants(own_pid()) {
            signal(p.pid, sig);
        }
    }

    /// Whether every service has exited and nothing else in their groups
    /// or below this task still runs (zombies are reaped here).
    fn all_gone(&mut self) -> bool {
        let mut gone = true;
        for (_, child) in &mut self.children {
            if !matches!(child.try_wait(), Ok(Some(_))) {
                gone = false;
            }
        }
        reap_orphans();
        let groups: Vec<i32> = self.children.iter().map(|(_, c)| c.id() as i32).collect();
        gone && !any_live_in(&groups) && descendants(own_pid()).iter().all(|p| p.zombie)
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Services {
    /// The live processes in the services' groups or below this task.
    fn live_processes(&self) -> Vec<Proc> {
        let groups: Vec<i32> = self.children.iter().map(|(_, c)| c.id() as i32).collect();
        let below = descendants(own_pid());
        all()
            .into_iter()
            .filter(|p| !p.zombie)
            .filter(|p| groups.contains(&p.pgrp) || below.iter().any(|d| d.pid == p.pid))
            .collect()
    }
}

/// A process's command name (`/proc/<pid>/comm`), for messages.
fn command_name(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

/// Whether any non-zombie process is in one of these process groups.
fn any_live_in(groups: &[i32]) -> bool {
    let procs = all();
    if procs.is_empty() {
        // No /proc: ask the kernel (zombies count, so this may wait longer).
        #[cfg(unix)]
        return groups.iter().any(|g| exists(-g));
        #[cfg(not(unix))]
        return false;
    }
    procs.iter().any(|p| !p.zombie && groups.contains(&p.pgrp))
}

/// Reaps exited processes that were re-parented to this task (it is their
/// subreaper), so none lingers as a zombie. The services' own `Child`
/// handles are reaped by `Child::wait`, not here.
fn reap_orphans() {
    #[cfg(unix)]
    for p in descendants(own_pid()) {
        if p.zombie && p.ppid == own_pid() {
            let mut status = 0;
            // SAFETY: waitpid writes only to `status`, a local.
            unsafe {
                sys::waitpid(p.pid, &mut status, sys::WNOHANG);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse_even_with_parentheses_in_the_name() {
        let line = "4242 (node (wrangler)) S 4200 4242 4200 0 -1 4194560 1 0 0 0 5 2 0 0 20 0 11 0 987654 100 10 18446744073709551615";
        assert_eq!(
            parse_stat(line),
            Some(Proc {
                pid: 4242,
                ppid: 4200,
                pgrp: 4242,
                start_time: 987654,
                zombie: false
            })
        );
        assert_eq!(
            parse_stat("7 (workerd) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 55 0 0")
                .map(|p| p.zombie),
            Some(true)
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn signals_to_everyone_our_own_group_or_init_are_refused() {
        for pid in [-1, 0, 1] {
            assert!(!targets_one_process_or_group(pid), "{pid}");
        }
        assert!(targets_one_process_or_group(4242));
        assert!(targets_one_process_or_group(-4242));
    }

    #[test]
    fn only_listening_rows_of_the_tcp_table_count() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 31337 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:D431 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 31338 1 0000000000000000 20 4 30 10 -1\n";
        assert_eq!(parse_listening(table), vec![(8080, 31337)]);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_process_tree_is_found_and_stopped_with_its_orphans() {
        use std::process::Command;
        // A shell in its own group with one child in its group and one that
        // left it for a session of its own: out of reach of the group
        // signal, as a detached workerd would be.
        become_subreaper();
        let mut command = Command::new("sh");
        command.args(["-c", "sleep 300 & setsid sleep 300 & wait"]);
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command.spawn().expect("sh starts");
        let shell = child.id() as i32;
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut tree = Vec::new();
        while tree.len() < 3 && Instant::now() < deadline {
            tree = descendants(own_pid());
            tree.retain(|p| p.pid == shell || p.ppid == shell);
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(tree.len(), 3, "the shell and its two sleeps: {tree:?}");
        let mut services = Services::new(Duration::from_secs(5));
        services.push("shell", child);
        services.stop();
        let left: Vec<&Proc> = tree.iter().filter(|p| is_running(p.identity())).collect();
        assert!(left.is_empty(), "still running: {left:?}");
    }
}
