//! The page of `bench`: every figure beside its target, and for the
//! traffic figures the writers' wait over time through every phase and
//! rollback.

use maud::html;
use phasegate::Verdict;

use super::traffic::{self, Traffic};
use super::{page, Decision, Meta};
use crate::bench::Figure;

/// The page of a bench run's `figures`.
pub fn bench(meta: &Meta, figures: &[Figure]) -> String {
    let missed = figures.iter().filter(|f| f.result == "missed").count();
    let decision = if missed == 0 {
        Decision::verdict(Verdict::Proceed, format!("{} figures, every one with a target met it", figures.len()))
    } else {
        Decision::verdict(Verdict::Review, format!("{missed} of {} figures missed their target", figures.len()))
    };
    let runs: Vec<Traffic> = figures.iter().filter_map(|f| serde_json::from_value(f.values.get("traffic")?.clone()).ok()).collect();
    let mut toc = vec![("figures", "figures")];
    if !runs.is_empty() {
        toc.push(("traffic", "traffic"));
    }
    let body = html! {
        section #figures {
            h2 { "Figures" }
            div.scroll { table {
                thead { tr { th { "benchmark" } th { "result" } th { "target" } th { "measured" } } }
                tbody { @for f in figures {
                    tr.bad[f.result == "missed"] {
                        td { (f.bench) }
                        td { span.badge.(match f.result { "met" => "proceed", "missed" => "rollback", _ => "other" }) { (f.result) } }
                        td { (f.target) } td { (f.measured) }
                    }
                } }
            } }
        }
        @if !runs.is_empty() {
            section #traffic {
                h2 { "Traffic" }
                p.note { "The application's writers ran all along; every statement's wait is on the chart." }
                @for t in &runs { (traffic::section(t)) }
            }
        }
    };
    page(meta, &decision, &toc, body)
}
