//! The dashboard's charts: inline SVG drawn on the server, so they need no script and nothing
//! from outside (the CSP is `default-src 'self'`). Colours come from classes in
//! `assets/console.css` (`.chart .s0`, `.s1`, ...) and sizes from SVG presentation
//! attributes, never inline `style`. Each chart carries a `<title>` for screen readers; the
//! page shows the same numbers as a table next to it.

use maud::{Markup, html};

/// One series of a chart: its name (for the legend) and one value per category.
pub struct Series<'a> {
    pub name: &'a str,
    pub values: Vec<f64>,
}

/// How values are written on the chart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Whole numbers.
    Count,
    /// Ratios 0–1, written as percentages; the axis runs to 100%.
    Percent,
}

impl Unit {
    fn format(self, value: f64) -> String {
        match self {
            Unit::Count => format!("{value:.0}"),
            Unit::Percent => format!("{:.0}%", value * 100.0),
        }
    }
}

/// The smallest "round" number (1, 2 or 5 times a power of ten) at or above `max`.
fn nice_ceiling(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let power = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * power).find(|v| *v >= max).unwrap_or(max)
}

fn legend(series: &[Series<'_>], x: f64) -> Markup {
    html! {
        @for (i, s) in series.iter().enumerate() {
            @let left = x + i as f64 * 120.0;
            rect class={ "s" (i) } x=(left) y="4" width="12" height="12" rx="2" {}
            text.legend x=(left + 18.0) y="14" font-size="12" { (s.name) }
        }
    }
}

/// Vertical columns: one cluster per category (a week), one column per series.
pub fn columns(title: &str, categories: &[String], series: &[Series<'_>], unit: Unit) -> Markup {
    const W: f64 = 760.0;
    const H: f64 = 250.0;
    const LEFT: f64 = 44.0;
    const TOP: f64 = 28.0;
    const BOTTOM: f64 = 34.0;
    let plot_w = W - LEFT - 10.0;
    let plot_h = H - TOP - BOTTOM;
    let max = match unit {
        Unit::Percent => 1.0,
        Unit::Count => nice_ceiling(series.iter().flat_map(|s| s.values.iter().copied()).fold(0.0, f64::max)),
    };
    let band = plot_w / categories.len().max(1) as f64;
    let bar = (band * 0.8 / series.len().max(1) as f64).min(36.0);
    let y_of = |v: f64| TOP + plot_h - (v / max).clamp(0.0, 1.0) * plot_h;
    html! {
        svg.chart viewBox={ "0 0 " (W) " " (H) } role="img" aria-label=(title) xmlns="http://www.w3.org/2000/svg" {
            title { (title) }
            (legend(series, LEFT))
            @for step in 0..=4 {
                @let v = max * f64::from(step) / 4.0;
                line.grid x1=(LEFT) x2=(W - 10.0) y1=(y_of(v)) y2=(y_of(v)) {}
                text.axis x=(LEFT - 6.0) y=(y_of(v) + 4.0) text-anchor="end" font-size="11" { (unit.format(v)) }
            }
            @for (c, category) in categories.iter().enumerate() {
                @let cluster = LEFT + band * c as f64 + (band - bar * series.len() as f64) / 2.0;
                @for (i, s) in series.iter().enumerate() {
                    @let v = s.values.get(c).copied().unwrap_or(0.0);
                    @let x = cluster + bar * i as f64;
                    rect class={ "s" (i) } x=(x) y=(y_of(v)) width=(bar - 2.0) height=(TOP + plot_h - y_of(v)) {
                        title { (category) " · " (s.name) "：" (unit.format(v)) }
                    }
                    text.value x=(x + (bar - 2.0) / 2.0) y=(y_of(v) - 3.0) text-anchor="middle" font-size="10" {
                        (unit.format(v))
                    }
                }
                text.axis x=(LEFT + band * (c as f64 + 0.5)) y=(H - 12.0) text-anchor="middle" font-size="11" { (category) }
            }
        }
    }
}

/// Horizontal bars: one row per category (a group), one bar per series, to 100%.
pub fn bars(title: &str, categories: &[String], series: &[Series<'_>], unit: Unit) -> Markup {
    const W: f64 = 760.0;
    const LEFT: f64 = 170.0;
    const TOP: f64 = 26.0;
    const BAR: f64 = 12.0;
    let plot_w = W - LEFT - 60.0;
    let row_h = BAR * series.len() as f64 + 10.0;
    let h = TOP + row_h * categories.len() as f64 + 8.0;
    let max = match unit {
        Unit::Percent => 1.0,
        Unit::Count => nice_ceiling(series.iter().flat_map(|s| s.values.iter().copied()).fold(0.0, f64::max)),
    };
    let w_of = |v: f64| (v / max).clamp(0.0, 1.0) * plot_w;
    html! {
        svg.chart viewBox={ "0 0 " (W) " " (h) } role="img" aria-label=(title) xmlns="http://www.w3.org/2000/svg" {
            title { (title) }
            (legend(series, LEFT))
            line.grid x1=(LEFT) x2=(LEFT) y1=(TOP) y2=(h - 4.0) {}
            line.grid x1=(LEFT + plot_w) x2=(LEFT + plot_w) y1=(TOP) y2=(h - 4.0) {}
            @for (c, category) in categories.iter().enumerate() {
                @let top = TOP + row_h * c as f64 + 4.0;
                text.axis x=(LEFT - 8.0) y=(top + row_h / 2.0) text-anchor="end" font-size="12" { (category) }
                @for (i, s) in series.iter().enumerate() {
                    @let v = s.values.get(c).copied().unwrap_or(0.0);
                    @let y = top + BAR * i as f64;
                    rect class={ "s" (i) } x=(LEFT) y=(y) width=(w_of(v)) height=(BAR - 2.0) {
                        title { (category) " · " (s.name) "：" (unit.format(v)) }
                    }
                    text.value x=(LEFT + w_of(v) + 4.0) y=(y + BAR - 3.0) font-size="10" { (unit.format(v)) }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_round_up_and_charts_carry_no_inline_style() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(13.0), 20.0);
        assert_eq!(nice_ceiling(420.0), 500.0);
        let svg = columns(
            "事件",
            &["11-02".to_string(), "11-09".to_string()],
            &[Series { name: "受理", values: vec![3.0, 5.0] }, Series { name: "办结", values: vec![2.0, 4.0] }],
            Unit::Count,
        )
        .into_string();
        assert!(svg.starts_with("<svg") && !svg.contains("style="), "{svg}");
        let svg = bars("率", &["第一网格".to_string()], &[Series { name: "办结率", values: vec![0.5] }], Unit::Percent)
            .into_string();
        assert!(svg.contains("50%") && !svg.contains("style="), "{svg}");
    }
}
