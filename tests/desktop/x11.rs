//! The X server under the test, spoken to as a window manager would: to close a window the way a
//! person does with its close button. WebDriver's own "close window" only closes the web view and
//! leaves its empty window on the screen, so it is not what a person does.

use std::time::{Duration, Instant};

use x11rb::connection::Connection;
use x11rb::protocol::xproto::{AtomEnum, ClientMessageEvent, ConnectionExt, EventMask, Window};
use x11rb::rust_connection::RustConnection;

/// The top-level windows of the display titled exactly `title`.
fn windows_titled(connection: &RustConnection, root: Window, title: &str) -> Vec<Window> {
    let tree = connection
        .query_tree(root)
        .expect("the X server answers")
        .reply()
        .expect("the X server lists its windows");
    tree.children
        .into_iter()
        .filter(|&window| {
            connection
                .get_property(false, window, AtomEnum::WM_NAME, AtomEnum::ANY, 0, 256)
                .ok()
                .and_then(|cookie| cookie.reply().ok())
                .is_some_and(|name| name.value == title.as_bytes())
        })
        .collect()
}

fn atom(connection: &RustConnection, name: &str) -> u32 {
    connection
        .intern_atom(false, name.as_bytes())
        .expect("the X server answers")
        .reply()
        .expect("the X server interns the atom")
        .atom
}

/// Asks the one window titled `title` to close (`WM_DELETE_WINDOW`), then waits until it is gone.
pub fn close_window_titled(title: &str) {
    let (connection, screen) = x11rb::connect(None).expect("the test's X display ($DISPLAY)");
    let root = connection.setup().roots[screen].root;
    let found = windows_titled(&connection, root, title);
    assert_eq!(found.len(), 1, "one window titled {title:?}: {found:?}");
    let delete = ClientMessageEvent::new(
        32,
        found[0],
        atom(&connection, "WM_PROTOCOLS"),
        [
            atom(&connection, "WM_DELETE_WINDOW"),
            x11rb::CURRENT_TIME,
            0,
            0,
            0,
        ],
    );
    connection
        .send_event(false, found[0], EventMask::NO_EVENT, delete)
        .expect("the X server takes the message");
    connection
        .flush()
        .expect("the message reaches the X server");
    let started = Instant::now();
    while !windows_titled(&connection, root, title).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the window titled {title:?} did not close"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
