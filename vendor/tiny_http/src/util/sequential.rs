//! pypowerwall-server patch (24): pipelined requests read and answer in order through numbered
//! turns on one shared lock per connection, instead of a new `mpsc` channel pair per request
//! (two channel counters and two message blocks allocated per request, upstream).
//!
//! Each reader and writer gets a ticket; it waits (only if it must) until the connection's
//! turn reaches its ticket, and passing the turn on wakes a waiter only when there is one.
//! Readers hand the byte source itself from one request to the next; writers share the sink
//! and only take turns.

use std::io::Result as IoResult;
use std::io::{Read, Write};

use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// The turn of a connection's readers or writers, and what the one whose turn it is takes.
struct Turns<T> {
    state: Mutex<TurnState<T>>,
    cv: Condvar,
}

struct TurnState<T> {
    /// The ticket whose turn it is.
    turn: u64,
    /// Threads waiting in `wait_for` (a turn passed on wakes them only when there are some).
    waiters: usize,
    /// The byte source, while no reader holds it.
    item: Option<T>,
}

impl<T> Turns<T> {
    fn new(item: Option<T>) -> Arc<Turns<T>> {
        Arc::new(Turns {
            state: Mutex::new(TurnState {
                turn: 0,
                waiters: 0,
                item,
            }),
            cv: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, TurnState<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Blocks until it is `ticket`'s turn.
    fn wait_for(&self, ticket: u64) -> MutexGuard<'_, TurnState<T>> {
        let mut s = self.lock();
        while s.turn < ticket {
            s.waiters += 1;
            s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner());
            s.waiters -= 1;
        }
        s
    }

    /// Passes the turn on from `ticket` (whose turn it is, under `s`).
    fn pass(&self, mut s: MutexGuard<'_, TurnState<T>>, ticket: u64) {
        s.turn = ticket + 1;
        let wake = s.waiters > 0;
        drop(s);
        if wake {
            self.cv.notify_all();
        }
    }
}

pub struct SequentialReaderBuilder<R>
where
    R: Read + Send,
{
    turns: Arc<Turns<R>>,
    next_ticket: u64,
}

pub struct SequentialReader<R>
where
    R: Read + Send,
{
    turns: Arc<Turns<R>>,
    ticket: u64,
    /// The byte source, once it is this reader's turn.
    held: Option<R>,
    /// The source was not there at our turn (a predecessor lost it): every read fails.
    gone: bool,
}

pub struct SequentialWriterBuilder<W>
where
    W: Write + Send,
{
    writer: Arc<Mutex<W>>,
    turns: Arc<Turns<()>>,
    next_ticket: u64,
}

/// A writer for one answer. Not generic, so a `Request` holds it without a `Box`.
pub struct SequentialWriter {
    writer: Arc<Mutex<dyn Write + Send>>,
    turns: Arc<Turns<()>>,
    ticket: u64,
    /// It is this writer's turn (the previous answers are written).
    my_turn: bool,
}

impl<R: Read + Send> SequentialReaderBuilder<R> {
    pub fn new(reader: R) -> SequentialReaderBuilder<R> {
        SequentialReaderBuilder {
            turns: Turns::new(Some(reader)),
            next_ticket: 0,
        }
    }

    /// The next reader: it reads once every earlier reader is dropped.
    pub fn next_reader(&mut self) -> SequentialReader<R> {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        SequentialReader {
            turns: self.turns.clone(),
            ticket,
            held: None,
            gone: false,
        }
    }
}

impl<W: Write + Send + 'static> SequentialWriterBuilder<W> {
    pub fn new(writer: W) -> SequentialWriterBuilder<W> {
        SequentialWriterBuilder {
            writer: Arc::new(Mutex::new(writer)),
            turns: Turns::new(None),
            next_ticket: 0,
        }
    }

    /// The next writer: it writes once every earlier writer is dropped.
    pub fn next_writer(&mut self) -> SequentialWriter {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        SequentialWriter {
            writer: self.writer.clone(),
            turns: self.turns.clone(),
            ticket,
            my_turn: false,
        }
    }
}

impl<R: Read + Send> SequentialReader<R> {
    /// The byte source, waiting for this reader's turn the first time.
    fn source(&mut self) -> IoResult<&mut R> {
        if self.held.is_none() && !self.gone {
            let mut s = self.turns.wait_for(self.ticket);
            self.held = s.item.take();
            self.gone = self.held.is_none();
        }
        // a reader that vanished is an error, not a panic
        self.held.as_mut().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "previous reader gone")
        })
    }
}

impl<R: Read + Send> Read for SequentialReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        self.source()?.read(buf)
    }
}

/// pypowerwall-server patch (22): the head parser scans the buffer instead of reading a byte
/// per call.
impl<R: std::io::BufRead + Send> std::io::BufRead for SequentialReader<R> {
    fn fill_buf(&mut self) -> IoResult<&[u8]> {
        self.source()?.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        if let Some(reader) = self.held.as_mut() {
            reader.consume(amt)
        }
    }
}

impl SequentialWriter {
    fn sink(&mut self) -> std::sync::MutexGuard<'_, dyn Write + Send + 'static> {
        if !self.my_turn {
            drop(self.turns.wait_for(self.ticket));
            self.my_turn = true;
        }
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Write for SequentialWriter {
    fn write(&mut self, buf: &[u8]) -> IoResult<usize> {
        self.sink().write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> IoResult<()> {
        self.sink().write_all(buf)
    }

    fn flush(&mut self) -> IoResult<()> {
        self.sink().flush()
    }
}

impl<R> Drop for SequentialReader<R>
where
    R: Read + Send,
{
    fn drop(&mut self) {
        // A reader that never read waits for its turn, like upstream's; the source goes on.
        let mut s = self.turns.wait_for(self.ticket);
        if let Some(reader) = self.held.take() {
            s.item = Some(reader);
        }
        self.turns.pass(s, self.ticket);
    }
}

impl Drop for SequentialWriter {
    fn drop(&mut self) {
        // A writer that never wrote waits for the earlier answers too, so a later one cannot
        // overtake them (upstream passed the turn on at once).
        let s = self.turns.wait_for(self.ticket);
        self.turns.pass(s, self.ticket);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, Cursor};

    #[test]
    fn readers_take_turns_in_ticket_order() {
        let mut b = SequentialReaderBuilder::new(Cursor::new(b"abcdef".to_vec()));
        let mut r0 = b.next_reader();
        let mut r1 = b.next_reader();
        let mut r2 = b.next_reader();
        let t = std::thread::spawn(move || {
            let mut x = [0u8; 2];
            r2.read_exact(&mut x).unwrap();
            x
        });
        let mut x = [0u8; 2];
        r0.read_exact(&mut x).unwrap();
        assert_eq!(&x, b"ab");
        drop(r0);
        assert_eq!(r1.fill_buf().unwrap(), b"cdef");
        r1.consume(2);
        drop(r1);
        assert_eq!(&t.join().unwrap(), b"ef");
    }

    #[test]
    fn writers_keep_order_even_when_one_never_writes() {
        let mut b = SequentialWriterBuilder::new(Vec::new());
        let shared = b.writer.clone();
        let mut w0 = b.next_writer();
        let w1 = b.next_writer();
        let mut w2 = b.next_writer();
        let t = std::thread::spawn(move || w2.write_all(b"2").unwrap());
        std::thread::sleep(std::time::Duration::from_millis(20));
        w0.write_all(b"0").unwrap();
        drop(w0);
        drop(w1);
        t.join().unwrap();
        assert_eq!(&*shared.lock().unwrap(), b"02");
    }
}
