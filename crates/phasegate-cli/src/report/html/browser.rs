//! Opening a report page in headless Chromium (cargo feature `browser`),
//! for `bench --only html` (how long the biggest page takes to open) and
//! the report's browser test (what a reader sees): through the DevTools
//! protocol, every request the page makes is counted, its charts are
//! measured in the laid-out DOM, and a full-page screenshot is taken.

use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use headless_chrome::protocol::cdp::types::Event;
use headless_chrome::protocol::cdp::{Emulation, Network, Page};
use headless_chrome::{LaunchOptions, Tab};
use serde::Deserialize;

/// What to install when no browser starts.
pub const INSTALL: &str = "install Chromium (Debian: apt-get install -y chromium), or name another Chrome in CHROME";

/// A headless Chromium.
pub struct Browser {
    inner: headless_chrome::Browser,
    /// The viewport of every tab, in CSS pixels (a window cannot be made
    /// narrower than about 500 pixels; the viewport can).
    viewport: (u32, u32),
}

/// A chart as the browser laid it out.
#[derive(Debug, Clone, Deserialize)]
pub struct Chart {
    /// Its `aria-label`: what it shows.
    pub label: String,
    pub width: f64,
    pub height: f64,
    /// Data marks (`g.marks .mark`) with a non-empty box.
    pub marks: usize,
}

/// What the DOM of an opened page says.
#[derive(Debug, Clone, Deserialize)]
pub struct Dom {
    pub charts: Vec<Chart>,
    /// `<script>` elements in the document.
    pub scripts: usize,
    /// The page is wider than the window (it would scroll sideways).
    pub overflows: bool,
    /// The page's full height, in CSS pixels.
    pub height: f64,
    /// The text a reader sees.
    pub text: String,
}

/// A page opened in the browser.
#[derive(Debug, Clone)]
pub struct Opened {
    /// From the navigation's start to the load event.
    pub load_ms: f64,
    /// To the load event and the whole page laid out (what a reader waits for).
    pub open_ms: f64,
    /// Every URL the page requested, the page itself first.
    pub requests: Vec<String>,
    pub dom: Dom,
    /// A PNG of the whole page (up to [`MAX_SHOT_HEIGHT`] pixels of it).
    pub screenshot: Vec<u8>,
}

impl Opened {
    /// Requests other than the page itself.
    pub fn fetches(&self) -> Vec<&str> {
        self.requests.iter().skip(1).map(String::as_str).collect()
    }
}

/// The tallest screenshot taken (a long history's page is taller).
pub const MAX_SHOT_HEIGHT: f64 = 8000.0;

const PROBE: &str = r#"JSON.stringify({
  charts: [...document.querySelectorAll('svg')].map(s => {
    const r = s.getBoundingClientRect();
    const marks = [...s.querySelectorAll('g.marks .mark')].filter(m => { const b = m.getBoundingClientRect(); return b.width > 0 || b.height > 0; }).length;
    return { label: s.getAttribute('aria-label') || '', width: r.width, height: r.height, marks };
  }),
  scripts: document.scripts.length,
  overflows: document.documentElement.scrollWidth > window.innerWidth + 1,
  height: document.documentElement.scrollHeight,
  text: document.body.innerText
})"#;

fn err(what: &str) -> impl Fn(anyhow::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

impl Browser {
    /// Starts headless Chromium with a window of `width` x `height` CSS
    /// pixels; the error says what to install when none starts.
    pub fn launch(width: u32, height: u32) -> Result<Browser, String> {
        let path = headless_chrome::browser::default_executable().map_err(|e| format!("no Chromium or Chrome found ({e}): {INSTALL}"))?;
        let opts = LaunchOptions::default_builder()
            .path(Some(path.clone()))
            .headless(true)
            // Running as root (CI containers) needs it; the pages run no script.
            .sandbox(false)
            .window_size(Some((width, height)))
            .idle_browser_timeout(Duration::from_secs(600))
            .build()
            .map_err(|e| format!("launching {}: {e}", path.display()))?;
        let inner = headless_chrome::Browser::new(opts).map_err(|e| format!("{} did not start ({e}): {INSTALL}", path.display()))?;
        Ok(Browser { inner, viewport: (width, height) })
    }

    /// Opens the page at `path` in a new tab, times it, reads its DOM and
    /// takes a screenshot.
    pub fn open(&self, path: &Path) -> Result<Opened, String> {
        let path = path.canonicalize().map_err(|e| format!("{}: {e}", path.display()))?;
        let url = format!("file://{}", path.display());
        let tab = self.inner.new_tab().map_err(err("opening a tab"))?;
        let (width, height) = self.viewport;
        tab.call_method(Emulation::SetDeviceMetricsOverride {
            width,
            height,
            device_scale_factor: 1.0,
            // A phone's width gets a phone's viewport rules.
            mobile: width < 600,
            scale: None,
            screen_width: None,
            screen_height: None,
            position_x: None,
            position_y: None,
            dont_set_visible_size: None,
            screen_orientation: None,
            viewport: None,
            display_feature: None,
            device_posture: None,
        })
        .map_err(err("sizing the viewport"))?;
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (loaded_tx, loaded) = mpsc::channel();
        let loaded_tx = Mutex::new(loaded_tx);
        let seen = requests.clone();
        tab.add_event_listener(Arc::new(move |e: &Event| match e {
            Event::NetworkRequestWillBeSent(r) => seen.lock().expect("not poisoned").push(r.params.request.url.clone()),
            Event::PageLoadEventFired(_) => {
                let _ = loaded_tx.lock().expect("not poisoned").send(());
            }
            _ => {}
        }))
        .map_err(err("listening to the tab"))?;
        tab.call_method(Network::Enable { max_total_buffer_size: None, max_resource_buffer_size: None, max_post_data_size: None, report_direct_socket_traffic: None, enable_durable_messages: None })
            .map_err(err("watching the network"))?;
        tab.call_method(Page::Enable { enable_file_chooser_opened_event: None }).map_err(err("watching the page"))?;
        let t = Instant::now();
        tab.navigate_to(&url).map_err(err("opening the page"))?;
        loaded.recv_timeout(Duration::from_secs(60)).map_err(|_| format!("{url} did not finish loading within 60 s"))?;
        let load_ms = t.elapsed().as_secs_f64() * 1000.0;
        let dom = probe(&tab)?;
        let open_ms = t.elapsed().as_secs_f64() * 1000.0;
        let screenshot = shot(&tab, dom.height)?;
        let requests = requests.lock().expect("not poisoned").clone();
        let _ = tab.close(false);
        Ok(Opened { load_ms, open_ms, requests, dom, screenshot })
    }
}

/// Lays the page out (reading its geometry forces it) and reads the DOM.
fn probe(tab: &Tab) -> Result<Dom, String> {
    let v = tab.evaluate(PROBE, false).map_err(err("reading the page"))?;
    let text = v.value.and_then(|v| v.as_str().map(str::to_string)).ok_or("the page probe returned nothing")?;
    serde_json::from_str(&text).map_err(|e| format!("the page probe: {e}"))
}

/// A PNG of the page from its top, `height` tall (capped).
fn shot(tab: &Tab, height: f64) -> Result<Vec<u8>, String> {
    let width = tab.evaluate("document.documentElement.scrollWidth", false).ok().and_then(|v| v.value).and_then(|v| v.as_f64()).unwrap_or(1280.0);
    let clip = Page::Viewport { x: 0.0, y: 0.0, width, height: height.min(MAX_SHOT_HEIGHT), scale: 1.0 };
    let data = tab
        .call_method(Page::CaptureScreenshot {
            format: Some(Page::CaptureScreenshotFormatOption::Png),
            quality: None,
            clip: Some(clip),
            from_surface: Some(true),
            capture_beyond_viewport: Some(true),
            optimize_for_speed: None,
        })
        .map_err(err("taking a screenshot"))?
        .data;
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(data).map_err(|e| format!("the screenshot: {e}"))
}
