//! What the library tells whoever runs it while it works, without printing: each stage reports
//! [`Event`]s to a [`Reporter`] it is given, and only the command line (`cmd/`) decides how they
//! look (cargo-style lines on stderr) or whether they show at all. A test passes a [`Recorder`]
//! and reads what was reported.

use std::cell::RefCell;

/// Something worth telling while a step runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A step: a verb (`Building`, `Flasher`, `Running`, `Built`…) and what it is about, shown
    /// as one cargo-style line.
    Step { verb: &'static str, message: String },
    /// Something that does not stop the work but that the user should know.
    Warning(String),
}

impl Event {
    /// A step event.
    pub fn step(verb: &'static str, message: impl Into<String>) -> Event {
        Event::Step {
            verb,
            message: message.into(),
        }
    }

    /// A warning event.
    pub fn warning(message: impl Into<String>) -> Event {
        Event::Warning(message.into())
    }
}

/// Receives the events of a step.
pub trait Reporter {
    fn report(&self, event: Event);
}

/// Reports nothing: for callers that only want the result.
pub struct Quiet;

impl Reporter for Quiet {
    fn report(&self, _event: Event) {}
}

/// Keeps every event, in order: for tests, and for callers that show them later.
#[derive(Default)]
pub struct Recorder {
    events: RefCell<Vec<Event>>,
}

impl Recorder {
    /// The events reported so far.
    pub fn events(&self) -> Vec<Event> {
        self.events.borrow().clone()
    }
}

impl Reporter for Recorder {
    fn report(&self, event: Event) {
        self.events.borrow_mut().push(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorder_keeps_events_in_order_and_quiet_drops_them() {
        let r = Recorder::default();
        r.report(Event::step("Building", "blinky"));
        r.report(Event::warning("slow"));
        Quiet.report(Event::step("Lost", "nowhere"));
        assert_eq!(
            r.events(),
            [
                Event::Step {
                    verb: "Building",
                    message: "blinky".into()
                },
                Event::Warning("slow".into())
            ]
        );
    }
}
