// segql dashboard: one EventSource per page; each update carries the change log's seq as its
// id, so the browser's automatic reconnect resumes where it stopped (Last-Event-ID).
"use strict";
const segql = (() => {
  const el = (tag, attrs = {}, ...kids) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    for (const kid of kids) node.append(kid);
    return node;
  };
  const signed = (n) => (n > 0 ? "+" : "") + n;
  const iso = (s) => s.replace(/\.\d+/, "").replace("+00:00", "Z");

  function listen(segment, onUpdate) {
    // The overview shows figures only: it asks for them without the changes behind them.
    const url = "/stream?" + (segment ? "segment=" + encodeURIComponent(segment) : "changes=0");
    const source = new EventSource(url);
    const dot = document.getElementById("live");
    source.addEventListener("open", () => dot && dot.classList.add("on"));
    source.addEventListener("error", () => dot && dot.classList.remove("on"));
    source.addEventListener("update", (e) => {
      document.body.dataset.lastEventId = e.lastEventId;
      onUpdate(JSON.parse(e.data));
    });
    source.addEventListener("reload", () => location.reload());
    window.segqlSource = source;
    return source;
  }

  function spark(svg, values) {
    const lo = Math.min(...values), hi = Math.max(...values), span = hi - lo || 1;
    const pts = values.map((v, i) => `${(i * 120) / (values.length - 1)},${22 - ((v - lo) * 20) / span}`);
    svg.innerHTML = `<polyline fill="none" stroke="currentColor" stroke-width="1.5" points="${pts.join(" ")}"/>`;
  }

  function overview() {
    document.querySelectorAll("svg[data-spark]").forEach((s) => spark(s, JSON.parse(s.dataset.spark)));
    listen(null, (u) => {
      for (const [name, st] of Object.entries(u.segments)) {
        const row = document.querySelector(`tr[data-segment="${CSS.escape(name)}"]`);
        if (!row) { location.reload(); return; }
        const set = (sel, v) => { const c = row.querySelector(sel); if (c.textContent !== String(v)) { c.textContent = v; c.classList.add("flash"); setTimeout(() => c.classList.remove("flash"), 400); } };
        set("[data-size]", st.size);
        set("[data-hour]", signed(st.hour)); set("[data-day]", signed(st.day));
        set("[data-in]", st.enters_per_min); set("[data-out]", st.exits_per_min);
        spark(row.querySelector("svg[data-spark]"), st.spark);
      }
    });
  }

  function changeRow(c) {
    const link = el("a", { href: "/users/" + encodeURIComponent(c.user_id) }, c.user_id);
    return el("tr", { "data-seq": c.seq, class: c.kind },
      el("td", {}, iso(c.at)), el("td", {}, link), el("td", {}, c.kind), el("td", {}, c.cause));
  }

  function segment(name) {
    const chartBox = document.getElementById("chart");
    let plot = null;
    async function chart(range) {
      const data = await (await fetch(`/api/segments/${encodeURIComponent(name)}/series?range=${range}`)).json();
      const opts = {
        width: chartBox.clientWidth || 800, height: 240,
        series: [{}, { label: "members", stroke: "#2563eb", fill: "rgba(37,99,235,0.08)", width: 2, points: { show: false } },
                 { label: "enters", stroke: "#16a34a", fill: "rgba(22,163,74,0.5)", scale: "n", paths: uPlot.paths.bars(), points: { show: false } },
                 { label: "exits", stroke: "#dc2626", fill: "rgba(220,38,38,0.5)", scale: "n", paths: uPlot.paths.bars(), points: { show: false } }],
        axes: [{}, { label: "members" }, { scale: "n", side: 1, label: "changes per step", grid: { show: false } }],
        scales: { n: { auto: true } },
      };
      if (plot) plot.destroy();
      plot = new uPlot(opts, [data.t, data.size, data.enters, data.exits], chartBox);
    }
    document.querySelectorAll("button[data-range]").forEach((b) => b.addEventListener("click", () => {
      document.querySelectorAll("button[data-range]").forEach((x) => x.classList.toggle("on", x === b));
      chart(b.dataset.range);
    }));
    chart("hour");

    const body = document.getElementById("changes");
    listen(name, (u) => {
      for (const c of u.changes) {
        if (body.querySelector(`tr[data-seq="${c.seq}"]`)) continue;
        body.prepend(changeRow(c));
      }
      while (body.children.length > 200) body.lastChild.remove();
      const st = u.segments[name];
      if (st) document.querySelector("[data-size]").textContent = st.size;
    });

    const form = document.getElementById("member-search"), list = document.getElementById("members");
    const more = document.getElementById("more"), csv = document.getElementById("csv");
    let offset = 0;
    async function members(reset) {
      const q = form.q.value;
      if (reset) { offset = 0; list.innerHTML = ""; }
      const page = await (await fetch(`/api/segments/${encodeURIComponent(name)}/members?q=${encodeURIComponent(q)}&offset=${offset}`)).json();
      for (const m of page.members) list.append(el("tr", {}, el("td", {}, el("a", { href: "/users/" + encodeURIComponent(m.user_id) }, m.user_id)), el("td", {}, iso(m.since))));
      offset += page.members.length;
      document.getElementById("member-count").textContent = `${page.total.toLocaleString("en")} matching`;
      more.hidden = offset >= page.total;
      csv.href = `/segments/${encodeURIComponent(name)}/members.csv?q=${encodeURIComponent(q)}`;
    }
    form.addEventListener("submit", (e) => { e.preventDefault(); members(true); });
    form.q.addEventListener("input", () => members(true));
    more.addEventListener("click", () => members(false));
    members(true);
  }

  function draft() {
    const form = document.getElementById("draft"), out = document.getElementById("draft-results");
    const err = document.getElementById("draft-error");
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      out.innerHTML = ""; err.hidden = true;
      const res = await fetch("/api/estimate", { method: "POST", headers: { "content-type": "application/json" },
        body: JSON.stringify({ definition: form.definition.value }) });
      const body = await res.json();
      if (body.error) {
        err.hidden = false;
        err.querySelector("[data-error-where]").textContent = body.error.line
          ? `line ${body.error.line}, column ${body.error.col}: ${body.error.problem}` : body.error.problem;
        err.querySelector("[data-error-message]").textContent = body.error.message;
        if (body.error.line) selectAt(form.definition, body.error.line, body.error.col);
        return;
      }
      for (const r of body.results) {
        const rows = Object.entries(r.overlap).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1])
          .map(([seg, n]) => el("tr", {}, el("td", {}, seg), el("td", { class: "num" }, n.toLocaleString("en")),
            el("td", { class: "num" }, r.size ? ((100 * n) / r.size).toFixed(1) + "%" : "")));
        out.append(el("div", { class: "result", "data-estimate": r.segment },
          el("h2", {}, r.segment, " ", el("span", { class: "big", "data-reach": "" }, r.size.toLocaleString("en")), " users"),
          el("p", {}, "Sample: ", r.sample.join(", ") || "none"),
          rows.length ? el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "Overlaps with"), el("th", {}, "users"), el("th", {}, "of the reach"))), el("tbody", {}, ...rows))
                      : el("p", {}, "No overlap with deployed segments.")));
      }
    });
  }

  function selectAt(area, line, col) {
    const lines = area.value.split("\n");
    let start = 0;
    for (let i = 0; i < line - 1; i++) start += lines[i].length + 1;
    start += col - 1;
    area.focus();
    area.setSelectionRange(start, Math.min(area.value.length, start + 1));
  }

  return { overview, segment, draft };
})();
