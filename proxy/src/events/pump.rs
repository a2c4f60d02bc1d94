//! The pump: the one task that moves events from the in-memory channel to the sink, through
//! the disk spool whenever the sink is away or slow.
//!
//! In order, always: while the spool holds anything, new events are appended behind it and
//! the spool is sent first, oldest batch first. A failed delivery opens the circuit (see
//! [`circuit`](super::circuit)); while it is open nothing calls the broker and every new
//! event goes to the spool; then one spooled batch probes the broker, and if it is taken the
//! rest follows. A delivery still in flight after `spill_after` starts moving the channel into
//! the spool, so a slow broker never fills the channel (the batch in flight is spooled first,
//! and skipped there if it is acknowledged after all).
//!
//! On stop the channel is closed and flushed, to the sink while it answers within the bound,
//! to the spool otherwise; then everything is synced. What the spool holds then is sent by the
//! next run.
//!
//! Disk work runs inline on this task (see `sink::blocking`), never on the data path; so does
//! building the events of finished exchanges (see [`Intake`]).

mod outlet;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::Event;
use super::circuit::{Backoff, Circuit, CircuitState};
use super::publisher::{Intake, Pending};
use super::sink::{SinkError, blocking};
use super::spool::Spool;
use super::stats::{Counters, Throttle};

pub(crate) use outlet::{Deliver, Outlet};

/// Time limits of the pump (shorter in tests).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// A delivery taking longer counts as failed (the broker is slow).
    pub(crate) publish: Duration,
    /// A delivery in flight this long starts moving the channel into the spool.
    pub(crate) spill_after: Duration,
    /// On stop, the longest the flush may take.
    pub(crate) shutdown: Duration,
    /// Housekeeping (fsync when due, log retention) this often.
    pub(crate) tick: Duration,
    /// The circuit breaker's waits.
    pub(crate) backoff: Backoff,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            publish: Duration::from_secs(10),
            spill_after: Duration::from_millis(250),
            shutdown: Duration::from_secs(5),
            tick: Duration::from_secs(1),
            backoff: Backoff::default(),
        }
    }
}

/// The spool side of the pump (apart from the sink, so a delivery in flight can borrow one
/// while the other takes events).
#[derive(Debug)]
struct Backlog {
    spool: Option<Spool>,
    counters: Arc<Counters>,
    warning: Throttle,
}

impl Backlog {
    fn len(&self) -> u64 {
        self.spool.as_ref().map_or(0, Spool::len)
    }

    /// Spools `events`, counting what was written, dropped or lost. Without a spool (the log
    /// sink) they are lost: counted and logged.
    fn push(&mut self, events: &[Event]) {
        if events.is_empty() {
            return;
        }
        let n = events.len() as u64;
        let Some(spool) = self.spool.as_mut() else {
            Counters::add(&self.counters.failed, n);
            tracing::error!(
                events = n,
                "events lost: the sink failed and there is no spool"
            );
            return;
        };
        match blocking(|| spool.append(events)) {
            Ok(appended) => {
                Counters::add(&self.counters.spooled, appended.written);
                if appended.dropped > 0 {
                    Counters::add(&self.counters.dropped_spool_full, appended.dropped);
                    if self.warning.allow() {
                        tracing::warn!(
                            dropped = appended.dropped,
                            total = self.counters.snapshot().dropped_spool_full,
                            "the event spool is full ([bus] spool_max); dropping events by [bus] on_full"
                        );
                    }
                }
            }
            Err(e) => {
                Counters::add(&self.counters.failed, n);
                tracing::error!(events = n, error = %e, "events lost: cannot write the spool");
            }
        }
        self.update();
    }

    fn update(&self) {
        self.counters
            .spool_pending
            .store(self.len(), std::sync::atomic::Ordering::Relaxed);
    }
}

/// How a delivery went.
struct Delivery {
    result: Result<(), SinkError>,
    /// The batch was spooled while in flight (it is at the spool's head).
    head_spooled: bool,
}

/// The pump task's state.
pub(crate) struct Pump<D> {
    rx: mpsc::Receiver<Pending>,
    /// Builds and stamps events, remembers the recent ones.
    intake: Arc<Intake>,
    outlet: D,
    backlog: Backlog,
    circuit: Circuit,
    counters: Arc<Counters>,
    stop: CancellationToken,
    batch: usize,
    limits: Limits,
    /// All publisher handles are gone.
    closed: bool,
}

impl<D: Deliver> Pump<D> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        rx: mpsc::Receiver<Pending>,
        intake: Arc<Intake>,
        outlet: D,
        spool: Option<Spool>,
        counters: Arc<Counters>,
        stop: CancellationToken,
        batch: usize,
        limits: Limits,
    ) -> Self {
        let mut circuit = Circuit::new(limits.backoff);
        if spool.as_ref().is_some_and(|s| !s.is_empty()) {
            circuit.draining();
        }
        Self {
            rx,
            intake,
            outlet,
            backlog: Backlog {
                spool,
                counters: counters.clone(),
                warning: Throttle::new(Duration::from_secs(10)),
            },
            circuit,
            counters,
            stop,
            batch: batch.max(1),
            limits,
            closed: false,
        }
    }

    /// Runs until stopped (or every publisher handle is gone), then flushes.
    pub(crate) async fn run(mut self) {
        let mut tick = tokio::time::interval(self.limits.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut incoming = Vec::with_capacity(self.batch);
        let mut buf = Vec::with_capacity(self.batch);
        self.report();
        while !self.closed {
            if self.backlog.len() > 0 {
                if let Some(retry_at) = self.circuit.retry_at() {
                    tokio::select! {
                        biased;
                        () = self.stop.cancelled() => break,
                        () = sleep_until(retry_at) => self.replay().await,
                        _ = tick.tick() => self.maintain(),
                        n = self.rx.recv_many(&mut incoming, self.batch) => {
                            self.closed = n == 0;
                            self.intake.unpack(incoming.drain(..), &mut buf);
                            self.backlog.push(&buf);
                            self.intake.remember(&mut buf);
                        }
                    }
                } else if self.stop.is_cancelled() {
                    break;
                } else {
                    if futures_util::FutureExt::now_or_never(tick.tick()).is_some() {
                        self.maintain();
                    }
                    self.replay().await;
                }
                continue;
            }
            tokio::select! {
                biased;
                () = self.stop.cancelled() => break,
                _ = tick.tick() => self.maintain(),
                n = self.rx.recv_many(&mut incoming, self.batch) => {
                    self.closed = n == 0;
                    if !self.closed {
                        self.gather(&mut incoming).await;
                    }
                    self.intake.unpack(incoming.drain(..), &mut buf);
                    self.send(&mut buf).await;
                }
            }
        }
        self.finish().await;
    }

    /// Lets the other ready tasks run first, then takes what they sent, up to a batch: the
    /// events of the exchanges that end meanwhile join this batch, so a busy proxy writes (or
    /// sends) many events at once instead of one per exchange. Woken by the first event, the
    /// pump would otherwise run straight after the task that sent it.
    async fn gather(&mut self, incoming: &mut Vec<Pending>) {
        if incoming.len() >= self.batch {
            return;
        }
        tokio::task::yield_now().await;
        while incoming.len() < self.batch {
            match self.rx.try_recv() {
                Ok(pending) => incoming.push(pending),
                Err(_) => break,
            }
        }
    }

    /// Sends a batch fresh from the channel (the spool is empty), then moves it into the
    /// recent ring (leaving `batch` empty).
    async fn send(&mut self, batch: &mut Vec<Event>) {
        if batch.is_empty() {
            return;
        }
        let n = batch.len() as u64;
        let delivery = self.deliver(batch, false).await;
        let published = match delivery.result {
            Ok(()) => {
                if delivery.head_spooled {
                    self.skip_head(n);
                }
                n
            }
            Err(SinkError::Unavailable(why)) => {
                if !delivery.head_spooled {
                    self.backlog.push(batch);
                }
                self.failed(&why);
                0
            }
            Err(SinkError::Rejected(why)) => {
                self.rejected(n, &why, batch);
                if delivery.head_spooled {
                    self.skip_head(n);
                }
                0
            }
        };
        // Remembered before counted: whoever sees the count sees the events.
        self.intake.remember(batch);
        Counters::add(&self.counters.published, published);
        self.report();
    }

    /// Sends the oldest spooled batch (a probe when the circuit was open).
    async fn replay(&mut self) {
        // Whatever waits in the channel goes behind the spool, to keep the order.
        let mut waiting = Vec::new();
        while let Ok(pending) = self.rx.try_recv() {
            self.intake.unpack([pending], &mut waiting);
            if waiting.len() >= self.batch {
                self.backlog.push(&waiting);
                self.intake.remember(&mut waiting);
            }
        }
        self.backlog.push(&waiting);
        self.intake.remember(&mut waiting);
        let Some(spool) = self.backlog.spool.as_mut() else {
            return;
        };
        let batch = match blocking(|| spool.peek(self.batch).map(<[Event]>::to_vec)) {
            Ok(batch) => batch,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the event spool");
                self.circuit.failure();
                self.report();
                return;
            }
        };
        let n = batch.len() as u64;
        let result = if batch.is_empty() {
            Ok(())
        } else {
            self.deliver(&batch, true).await.result
        };
        match result {
            Ok(()) => {
                Counters::add(&self.counters.replayed, n);
                self.ack();
                if self.circuit.state() == CircuitState::Open {
                    tracing::info!(
                        pending = self.backlog.len(),
                        "the event bus is back; sending the spool"
                    );
                }
                self.circuit.draining();
            }
            Err(SinkError::Unavailable(why)) => self.failed(&why),
            Err(SinkError::Rejected(why)) => {
                self.rejected(n, &why, &batch);
                self.ack();
            }
        }
        if self.backlog.len() == 0 && self.circuit.state() != CircuitState::Open {
            tracing::info!("event spool drained");
            self.circuit.close();
        }
        self.report();
    }

    /// Delivers `batch` while spilling the channel into the spool once it takes long.
    async fn deliver(&mut self, batch: &[Event], from_spool: bool) -> Delivery {
        let limits = self.limits;
        let publish = self.outlet.deliver(batch);
        tokio::pin!(publish);
        let deadline = sleep_until(Instant::now() + limits.publish);
        tokio::pin!(deadline);
        let spill = sleep_until(Instant::now() + limits.spill_after);
        tokio::pin!(spill);
        let can_spill = self.backlog.spool.is_some();
        let (mut spilling, mut head_spooled, mut stopping) = (false, false, false);
        let (mut incoming, mut buf) = (Vec::new(), Vec::new());
        let result = loop {
            tokio::select! {
                biased;
                result = &mut publish => break result,
                () = &mut deadline => break Err(SinkError::Unavailable(format!(
                    "no acknowledgement within {}", humantime::format_duration(limits.publish)
                ))),
                () = self.stop.cancelled(), if !stopping => {
                    stopping = true;
                    let bound = Instant::now() + limits.shutdown / 2;
                    if bound < deadline.deadline() {
                        deadline.as_mut().reset(bound);
                    }
                }
                () = &mut spill, if can_spill && !spilling => {
                    spilling = true;
                    if !from_spool && self.backlog.len() == 0 {
                        self.backlog.push(batch);
                        head_spooled = true;
                    }
                }
                n = self.rx.recv_many(&mut incoming, self.batch), if spilling && !self.closed => {
                    self.closed = n == 0;
                    self.intake.unpack(incoming.drain(..), &mut buf);
                    self.backlog.push(&buf);
                    self.intake.remember(&mut buf);
                }
            }
        };
        Delivery {
            result,
            head_spooled,
        }
    }

    fn ack(&mut self) {
        if let Some(spool) = self.backlog.spool.as_mut() {
            match blocking(|| spool.ack()) {
                Ok(0) => {}
                Ok(bad) => Counters::add(&self.counters.failed, bad),
                Err(e) => {
                    tracing::error!(error = %e, "cannot save the spool cursor; these events may be sent again")
                }
            }
        }
        self.backlog.update();
    }

    fn skip_head(&mut self, n: u64) {
        if let Some(spool) = self.backlog.spool.as_mut() {
            if let Err(e) = blocking(|| spool.skip(n)) {
                tracing::error!(error = %e, "cannot save the spool cursor; these events may be sent again");
            }
        }
        self.backlog.update();
    }

    /// The sink is away: open the circuit.
    fn failed(&mut self, why: &str) {
        let was = self.circuit.state();
        let wait = self.circuit.failure();
        if was == CircuitState::Open {
            tracing::debug!(error = %why, retry_in = ?wait, "event bus still unavailable");
        } else {
            tracing::warn!(error = %why, retry_in = ?wait, pending = self.backlog.len(), "event bus unavailable; spooling events to disk");
        }
    }

    fn rejected(&self, n: u64, why: &str, batch: &[Event]) {
        Counters::add(&self.counters.failed, n);
        let first = batch.first().map_or("", |e| e.id.as_str());
        tracing::error!(events = n, first_id = first, error = %why, "the event bus rejected a batch; it is dropped");
    }

    fn maintain(&mut self) {
        self.outlet.maintain();
        if let Some(spool) = self.backlog.spool.as_mut() {
            if let Err(e) = blocking(|| spool.sync(true)) {
                tracing::warn!(error = %e, "cannot sync the event spool");
            }
        }
    }

    fn report(&self) {
        self.backlog.update();
        self.counters.set_circuit(self.circuit.state());
    }

    /// Closes the channel and flushes it: to the sink while it answers in time, to the
    /// spool otherwise; then syncs.
    async fn finish(mut self) {
        self.rx.close();
        let deadline = Instant::now() + self.limits.shutdown;
        let mut rest = Vec::new();
        while let Ok(pending) = self.rx.try_recv() {
            self.intake.unpack([pending], &mut rest);
        }
        let total = rest.len();
        let mut sent = 0;
        let mut chunks = rest.chunks(self.batch);
        let healthy = self.backlog.len() == 0 && self.circuit.state() == CircuitState::Closed;
        if healthy {
            for chunk in chunks.by_ref() {
                let publish = self.outlet.deliver(chunk);
                match tokio::time::timeout_at(deadline, publish).await {
                    Ok(Ok(())) => {
                        Counters::add(&self.counters.published, chunk.len() as u64);
                        sent += chunk.len();
                    }
                    Ok(Err(SinkError::Rejected(why))) => {
                        self.rejected(chunk.len() as u64, &why, chunk);
                        sent += chunk.len();
                    }
                    Ok(Err(SinkError::Unavailable(_))) | Err(_) => {
                        self.backlog.push(chunk);
                        break;
                    }
                }
            }
        }
        for chunk in chunks {
            self.backlog.push(chunk);
        }
        self.intake.remember(&mut rest);
        self.outlet.flush();
        if let Some(spool) = self.backlog.spool.as_mut() {
            if let Err(e) = blocking(|| spool.sync(false)) {
                tracing::warn!(error = %e, "cannot sync the event spool");
            }
        }
        self.report();
        tracing::info!(
            flushed = total,
            delivered = sent,
            spool_pending = self.backlog.len(),
            "event publisher stopped"
        );
    }
}

#[cfg(test)]
mod tests;
