//! The report as one self-contained HTML page: styles inline, every image a `data:` URI, no
//! script, nothing fetched — it opens the same from a disk, a mail attachment or a browser
//! without network.

use crate::gather::{DiffListing, DiffSection, NeighbourRow, ReportData, Thumb};
use base64::Engine;
use std::fmt::Write;

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:1180px;
padding:24px;color:#1d2330;background:#fafbfc;line-height:1.4}
h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;margin:32px 0 8px;border-bottom:1px solid #d8dde6;padding-bottom:4px}
.muted{color:#6b7380;font-size:13px}
table{border-collapse:collapse;margin:8px 0}td,th{padding:4px 10px;border-bottom:1px solid #e3e7ee;text-align:right}
th{background:#eef1f6}td:first-child,th:first-child{text-align:left}
.verdict{display:inline-block;padding:6px 12px;border-radius:6px;font-weight:600}
.ok{background:#e3f4e8;color:#17623a}.bad{background:#fde8e6;color:#9c2218}
.thumbs{display:flex;flex-wrap:wrap;gap:6px;align-items:flex-start}
figure{margin:0;text-align:center;font-size:11px;color:#4a5260;width:84px}
figure img{width:80px;height:80px;object-fit:cover;border:2px solid transparent;border-radius:4px}
figure.same img{border-color:#1a9850}figure.query img{border-color:#f0a020}
.row{display:flex;gap:14px;align-items:center;margin:8px 0;padding:6px;background:#fff;border-radius:6px}
.row .name{width:260px;font-size:13px}.tag{font-size:11px;background:#fff3d6;color:#8a5a00;border-radius:3px;padding:1px 5px}
.pair{display:flex;gap:12px}.pair img{width:calc(50% - 6px)}.chart{max-width:100%;border:1px solid #d8dde6;border-radius:4px}
.missing{width:80px;height:80px;background:#e3e7ee;display:flex;align-items:center;justify-content:center}
";

/// Renders `data` as an HTML page.
pub fn render_html(data: &ReportData) -> String {
    let mut out = String::with_capacity(1 << 20);
    let title = format!("natview report — {}", data.dataset_name);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n",
        escape(&title)
    );
    let _ = writeln!(
        out,
        "<h1>{}</h1><p class=\"muted\">{} images in {} listings · encoder: {} · made by natview {}</p>",
        escape(&data.dataset_name),
        data.images,
        data.listings,
        escape(&data.encoder),
        data.version
    );
    metrics(&mut out, data);
    health(&mut out, data);
    out.push_str("<h2>Quadrant chart</h2><p class=\"muted\">Listings × views: green blocks on the diagonal against a red background mean the views of each listing sit together and listings are told apart.</p>\n");
    picture(&mut out, &data.quadrant_png, "quadrant chart");
    out.push_str("<h2>Projection</h2>\n");
    picture(&mut out, &data.projection_png, "PCA layout");
    neighbours(&mut out, &data.neighbours);
    if let Some(diff) = &data.diff {
        diff_section(&mut out, diff);
    }
    out.push_str("</body></html>\n");
    out
}

fn metrics(out: &mut String, data: &ReportData) {
    out.push_str("<h2>Listing retrieval</h2><p class=\"muted\">Each image queries the rest; a hit is another view of its own listing. Raw pixels are the baseline every encoder should beat.</p>\n<table><tr><th>embeddings</th><th>recall@1</th><th>recall@5</th><th>recall@10</th><th>mAP@10</th><th>intra mean</th><th>inter mean</th><th>gap</th><th>ROC AUC</th></tr>\n");
    for m in &data.metrics {
        let r = &m.retrieval;
        let p = &m.pairs;
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:+.3}</td><td>{:.3}</td></tr>",
            escape(&m.model),
            r.recall_at_1,
            r.recall_at_5,
            r.recall_at_10,
            r.map_at_10,
            p.intra_mean,
            p.inter_mean,
            p.gap,
            p.auc
        );
    }
    out.push_str("</table>\n");
}

fn health(out: &mut String, data: &ReportData) {
    let h = &data.health;
    let healthy = h.verdict.text.starts_with("healthy");
    let _ = write!(
        out,
        "<h2>Representation health</h2><p><span class=\"verdict {}\">{}</span></p>\n<table>\
         <tr><td>effective rank (RankMe)</td><td>{:.1} of {}</td></tr>\
         <tr><td>axes holding 95 % of the variance</td><td>{}</td></tr>\
         <tr><td>dead dimensions</td><td>{}</td></tr>\
         <tr><td>mean cosine between images</td><td>{:.3}</td></tr>\
         <tr><td>alignment of natural views (lower = closer)</td><td>{}</td></tr>\
         <tr><td>uniformity (lower = more spread)</td><td>{:.3}</td></tr>\
         <tr><td>hubness: skewness of {}-occurrence</td><td>{:.2}</td></tr>\
         <tr><td>share of neighbour slots held by the top 1 %</td><td>{:.1} %</td></tr>\
         <tr><td>images nobody's neighbour</td><td>{}</td></tr></table>\n",
        if healthy { "ok" } else { "bad" },
        escape(&h.verdict.text),
        h.effective_rank,
        h.dim,
        h.dims_for_95,
        h.dead_dims,
        h.mean_cosine,
        h.alignment
            .map_or_else(|| "–".to_string(), |a| format!("{a:.3}")),
        h.uniformity,
        h.hubness.k,
        h.hubness.skewness,
        h.hubness.top_percent_share * 100.0,
        h.hubness.orphans
    );
    if !data.hubs.is_empty() {
        out.push_str("<p class=\"muted\">The top hubs: images among the most others' nearest neighbours.</p><div class=\"thumbs\">");
        for (thumb, count) in &data.hubs {
            figure(out, thumb, "", &format!("neighbour of {count}"));
        }
        out.push_str("</div>\n");
    }
}

fn neighbours(out: &mut String, rows: &[NeighbourRow]) {
    if rows.is_empty() {
        return;
    }
    out.push_str("<h2>Sample neighbours</h2><p class=\"muted\">A sample of listings: the query (orange) and its nearest images; green frames are other views of the query's own listing.</p>\n");
    for row in rows {
        out.push_str("<div class=\"row\"><div class=\"thumbs\">");
        figure(out, &row.query, "query", &row.query.listing);
        for (thumb, cosine, same) in &row.neighbours {
            figure(
                out,
                thumb,
                if *same { "same" } else { "" },
                &format!("{cosine:.3}"),
            );
        }
        out.push_str("</div></div>\n");
    }
}

fn diff_section(out: &mut String, d: &DiffSection) {
    let _ = writeln!(
        out,
        "<h2>What changed: {} → {}</h2><p>recall@{k} {:.3} → {:.3} · neighbourhoods kept (mean Jaccard of the {k} nearest) {:.3} · listings: {} improved, {} regressed, {} unchanged</p>",
        escape(&d.names.0),
        escape(&d.names.1),
        d.recall.0,
        d.recall.1,
        d.mean_jaccard,
        d.counts.0,
        d.counts.1,
        d.counts.2,
        k = d.k
    );
    if let Some((improved, regressed, all)) = d.held_out {
        let _ = writeln!(
            out,
            "<p>Held out from B's training ({all} listings, never trained on): {improved} improved, {regressed} regressed.</p>"
        );
    }
    if let Some((a, b)) = &d.layouts_png {
        out.push_str("<div class=\"pair\">");
        image(out, "image/png", a, "A's layout", "chart");
        image(out, "image/png", b, "B's layout fitted onto A's", "chart");
        out.push_str("</div>\n");
    }
    for (title, listed) in [
        ("Most improved listings", &d.improved),
        ("Most regressed listings", &d.regressed),
    ] {
        if listed.is_empty() {
            continue;
        }
        let _ = writeln!(out, "<h3>{title}</h3>");
        for l in listed.iter() {
            diff_listing(out, l);
        }
    }
}

fn diff_listing(out: &mut String, l: &DiffListing) {
    let _ = write!(
        out,
        "<div class=\"row\"><div class=\"name\"><b>{}</b>{}<br><span class=\"muted\">MRR {:.2} → {:.2} · recall {:.2} → {:.2} · gap {:+.3} → {:+.3}</span></div><div class=\"thumbs\">",
        escape(&l.name),
        if l.held_out {
            " <span class=\"tag\">held out</span>"
        } else {
            ""
        },
        l.mrr.0,
        l.mrr.1,
        l.recall.0,
        l.recall.1,
        l.gap.0,
        l.gap.1
    );
    for view in &l.views {
        figure(out, view, "", "");
    }
    out.push_str("</div></div>\n");
}

fn picture(out: &mut String, png: &Result<Vec<u8>, String>, alt: &str) {
    match png {
        Ok(bytes) => {
            out.push_str("<div>");
            image(out, "image/png", bytes, alt, "chart");
            out.push_str("</div>\n");
        }
        Err(reason) => {
            let _ = writeln!(out, "<p class=\"muted\">No {alt}: {}</p>", escape(reason));
        }
    }
}

fn figure(out: &mut String, thumb: &Thumb, class: &str, caption: &str) {
    let _ = write!(
        out,
        "<figure class=\"{class}\" title=\"{}\">",
        escape(&thumb.path.display().to_string())
    );
    match &thumb.jpeg {
        Some(bytes) => image(out, "image/jpeg", bytes, &thumb.listing, ""),
        None => out.push_str("<div class=\"missing\">unreadable</div>"),
    }
    let _ = write!(out, "<figcaption>{}</figcaption></figure>", escape(caption));
}

fn image(out: &mut String, mime: &str, bytes: &[u8], alt: &str, class: &str) {
    let _ = write!(
        out,
        "<img class=\"{class}\" alt=\"{}\" src=\"data:{mime};base64,{}\">",
        escape(alt),
        base64::engine::general_purpose::STANDARD.encode(bytes)
    );
}

/// `text` with HTML's special characters escaped (safe in text and quoted attributes).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escaping_leaves_no_markup() {
        assert_eq!(
            escape("<a href=\"x\">Tom & 'Jerry'</a>"),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;"
        );
    }
}
