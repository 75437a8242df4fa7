/* guildmeter dashboard: fetches each panel's JSON and draws it (Chart.js for the chart). */
(function () {
  "use strict";
  const root = document.getElementById("dash");
  if (!root) return;
  const base = root.dataset.base;
  const isPublic = root.dataset.public === "yes";
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const state = {
    period: params.get("period") || "30d",
    month: params.get("month") || "",
    start: params.get("start") || "",
    end: params.get("end") || "",
    channel: params.get("channel") || "all",
    metric: params.get("metric") || "messages",
  };
  let minCell = null;
  let chart = null;
  let lastSeries = null;
  let usageLoaded = false;
  let latest = 0; // answers to an older request arrive late: they are dropped
  const DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

  function query(extra) {
    const q = new URLSearchParams({ period: state.period });
    if (state.period === "month" && state.month) q.set("month", state.month);
    if (state.period === "custom") { q.set("start", state.start); q.set("end", state.end); }
    if (state.channel !== "all" && !(extra && extra.noChannel)) q.set("channel", state.channel);
    return q.toString();
  }

  async function get(panel, extra) {
    const response = await fetch(`${base}/api/${panel}?${query(extra)}`, { credentials: "same-origin" });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
    return body;
  }

  const number = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
  function shown(value, hidden, key, unavailable) {
    if (hidden) return minCell ? `fewer than ${minCell}` : "hidden";
    if (unavailable) return "not available";
    if (value === null || value === undefined) return key === "new_members" ? "not collected" : "—";
    return number.format(value);
  }

  function css(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }

  function showError(error) {
    $("period-label").textContent = `Could not load: ${error.message}`;
  }

  async function refresh() {
    const mine = ++latest;
    const q = query();
    history.replaceState(null, "", `?${q}${state.metric !== "messages" ? "&metric=" + state.metric : ""}`);
    $("csv").href = `${base}/csv?${q}`;
    if ($("dump")) $("dump").href = `${base}/dump?${query({ noChannel: true })}`;
    try {
      const [tiles, series, heat, channels] = await Promise.all([
        get("tiles"), get("series"), get("heatmap"), get("channels"),
      ]);
      if (mine !== latest) return;
      minCell = tiles.min_cell_users;
      $("period-label").textContent = tiles.label + (state.channel !== "all" ? ` · ${channelName(state.channel)}` : "");
      $("users-note").hidden = !tiles.users_per_month;
      const live = tiles.unanonymised_months || [];
      if ($("dump-warning")) {
        // As `guildmeter export` says it: the dump holds pseudonyms of a month in progress.
        $("dump-warning").hidden = !live.length;
        $("dump-warning").textContent = live.length
          ? `${live.join(", ")}: not yet anonymised — do not distribute` : "";
      }
      drawTiles(tiles.tiles);
      const gaps = series.points.some((p) => (p.unavailable || []).length)
        || channels.channels.some((r) => (r.unavailable || []).length);
      const note = tiles.tiles.map((t) => t.note).find((n) => n) || (gaps ? tiles.unavailable_note : "");
      $("unavailable-note").textContent = note || "";
      $("unavailable-note").hidden = !note;
      lastSeries = series;
      drawChart();
      drawHeatmap(heat.heatmap);
      drawChannels(channels.channels);
      root.dataset.loaded = String(Date.now());
    } catch (error) { if (mine === latest) showError(error); }
    usageLoaded = false;
    if ($("usage") && !$("usage").hidden) loadUsage();
  }

  function channelName(id) {
    const row = document.querySelector(`#channels tr[data-channel="${id}"] td`);
    const option = $("channel") && $("channel").querySelector(`option[value="${id}"]`);
    return (option && option.textContent) || (row && row.textContent) || "one channel";
  }

  function drawTiles(tiles) {
    for (const tile of tiles) {
      const box = $(`tile-${tile.key}`);
      box.classList.toggle("active", tile.key === state.metric);
      box.querySelector(".value").textContent = shown(tile.value, tile.hidden, tile.key,
        tile.note && tile.value === null);
      box.title = tile.note || "";
      const change = box.querySelector(".change");
      change.className = "change";
      if (tile.hidden) {
        change.textContent = "";
      } else if (tile.previous_empty) {
        change.textContent = "no earlier data";
      } else if (tile.incomparable) {
        change.textContent = "not compared";
        box.title = [tile.note, tile.incomparable].filter(Boolean).join(" ");
      } else if (tile.value === tile.previous) {
        change.textContent = "no change";
      } else if (tile.change === null || tile.change === undefined) {
        change.textContent = tile.value === tile.previous ? "no change"
          : tile.previous === 0 ? "▲ from 0" : "";
        if (tile.previous === 0 && tile.value > 0) change.classList.add("up");
      } else {
        const up = tile.value >= tile.previous;
        // Joins minus parts may be negative: its change is a difference, not a ratio.
        const amount = tile.key === "new_members"
          ? number.format(Math.abs(tile.value - tile.previous))
          : Math.round(Math.abs(tile.change) * 100) === 0 ? "< 1 %"
          : `${Math.round(Math.abs(tile.change) * 100)} %`;
        change.textContent = `${up ? "▲" : "▼"} ${amount} vs previous`;
        change.classList.add(up ? "up" : "down");
      }
    }
  }

  function label(iso, granularity) {
    // Times carry the server's offset: its local wall clock is the text before it.
    if (granularity === "hour") return `${iso.slice(11, 13)}:00`;
    const d = new Date(`${iso.slice(0, 10)}T00:00:00Z`);
    const text = d.toLocaleDateString(undefined, { month: "short", day: "numeric", timeZone: "UTC" });
    return granularity === "week" ? `week of ${text}` : text;
  }

  function drawChart() {
    if (!lastSeries || typeof Chart === "undefined") return;
    const key = state.metric;
    const points = lastSeries.points;
    const labels = points.map((p) => label(p.start, lastSeries.granularity));
    const values = points.map((p) => p[key]);
    const title = ($(`tile-${key}`).querySelector(".label").textContent);
    const accent = css("--accent"), muted = css("--muted"), line = css("--line");
    const type = key === "new_members" ? "bar" : "line";
    if (chart) chart.destroy();
    chart = new Chart($("chart"), {
      type,
      data: { labels, datasets: [{ label: title, data: values, borderColor: accent,
        backgroundColor: type === "bar" ? accent : accent + "33", fill: type === "line",
        tension: 0.25, pointRadius: points.length > 40 ? 0 : 3, spanGaps: false }] },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        interaction: { mode: "index", intersect: false },
        plugins: { legend: { display: false }, tooltip: { callbacks: {
          label: (ctx) => {
            const p = points[ctx.dataIndex];
            return `${title}: ${shown(p[key], (p.hidden || []).includes(key), key,
              (p.unavailable || []).includes(key))}`;
          } } } },
        scales: { x: { ticks: { color: muted, maxRotation: 0, autoSkip: true }, grid: { color: line } },
                  y: { ticks: { color: muted }, grid: { color: line }, beginAtZero: true } },
      },
    });
  }

  function drawHeatmap(grid) {
    const box = $("heatmap");
    box.textContent = "";
    const max = Math.max(1, ...grid.flat().filter((v) => v !== null));
    box.appendChild(document.createElement("span"));
    for (let h = 0; h < 24; h++) {
      const span = document.createElement("span");
      span.className = "hour";
      span.textContent = h % 6 === 0 ? String(h) : "";
      box.appendChild(span);
    }
    const rgb = css("--heat");
    grid.forEach((row, day) => {
      const name = document.createElement("span");
      name.className = "day";
      name.textContent = DAYS[day];
      box.appendChild(name);
      row.forEach((value, hour) => {
        const cell = document.createElement("span");
        cell.className = "cell";
        const when = `${DAYS[day]} ${String(hour).padStart(2, "0")}:00 (server time)`;
        if (value === null) {
          cell.classList.add("hidden");
          cell.title = `${when}: ${shown(null, true)}`;
        } else {
          cell.style.background = `rgba(${rgb}, ${0.08 + 0.92 * (value / max)})`;
          cell.title = `${when}: ${number.format(value)} messages`;
        }
        box.appendChild(cell);
      });
    });
  }

  function drawChannels(rows) {
    const body = $("channels").querySelector("tbody");
    body.textContent = "";
    for (const row of rows) {
      const tr = document.createElement("tr");
      tr.dataset.channel = row.channel_id;
      if (row.channel_id === state.channel) tr.classList.add("selected");
      const hidden = row.hidden || [];
      const cells = [
        row.voice ? `${row.name} (voice)` : `#${row.name}`,
        shown(row.messages, hidden.includes("messages")),
        shown(row.active_users, hidden.includes("active_users"), "active_users",
          (row.unavailable || []).includes("active_users")),
        shown(row.voice_hours, hidden.includes("voice_hours")),
        hidden.includes("share") ? shown(null, true)
          : `${(row.share * 100).toFixed(1)} %`,
      ];
      for (const text of cells) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.appendChild(td);
      }
      tr.addEventListener("click", () => setChannel(row.channel_id === state.channel ? "all" : row.channel_id));
      body.appendChild(tr);
    }
    const filter = $("channel-filter");
    filter.textContent = "";
    if (state.channel !== "all") {
      const reset = document.createElement("a");
      reset.href = "#";
      reset.id = "all-channels";
      reset.textContent = "show all channels";
      reset.addEventListener("click", (event) => { event.preventDefault(); setChannel("all"); });
      filter.appendChild(reset);
    }
  }

  function setChannel(id) {
    state.channel = id;
    if ($("channel")) $("channel").value = id;
    refresh();
  }

  async function loadUsage() {
    if (usageLoaded) return;
    usageLoaded = true;
    try {
      const { usage, usage_label } = await get("usage", { noChannel: true });
      $("usage-label").textContent = usage_label;
      const tiles = [
        ["Commands", usage.commands_total], ["Failed", usage.commands_failed],
        ["Images", usage.images], ["Videos", usage.videos],
        [usage.users_counted_as === "users" ? "Users" : "User-months", usage.total_users],
      ];
      const box = $("usage-tiles");
      box.textContent = "";
      for (const [name, value] of tiles) {
        const tile = document.createElement("div");
        tile.className = "tile";
        tile.innerHTML = '<span class="label"></span><span class="value"></span><span class="change"></span>';
        tile.querySelector(".label").textContent = name;
        tile.querySelector(".value").textContent = number.format(value);
        box.appendChild(tile);
      }
      const fill = (id, rows) => {
        const body = $(id).querySelector("tbody");
        body.textContent = "";
        for (const row of rows) {
          const tr = document.createElement("tr");
          for (const text of row) {
            const td = document.createElement("td");
            td.textContent = text;
            tr.appendChild(td);
          }
          body.appendChild(tr);
        }
      };
      fill("commands", usage.commands.map((c) => [c.command, number.format(c.uses),
        `${(c.failure_rate * 100).toFixed(1)} %`, number.format(c.median_ms), number.format(c.p95_ms)]));
      fill("resolutions", usage.resolutions.map((r) => [r.resolution, number.format(r.jobs)]));
      $("usage-empty").hidden = usage.commands.length > 0 || usage.resolutions.length > 0;
      $("usage").dataset.loaded = "yes";
    } catch (error) { usageLoaded = false; showError(error); }
  }

  // -- controls ---------------------------------------------------------------------------
  const period = $("period");
  const today = new Date().toISOString().slice(0, 10);
  period.value = state.period;
  $("month").value = state.month || today.slice(0, 7);
  $("start").value = state.start || today;
  $("end").value = state.end || today;
  function syncControls() {
    $("month").hidden = state.period !== "month";
    $("custom").hidden = state.period !== "custom";
  }
  syncControls();
  period.addEventListener("change", () => {
    state.period = period.value;
    if (state.period === "month") state.month = $("month").value;
    if (state.period === "custom") { state.start = $("start").value; state.end = $("end").value; }
    syncControls();
    refresh();
  });
  $("month").addEventListener("change", () => { state.month = $("month").value; refresh(); });
  for (const id of ["start", "end"]) {
    $(id).addEventListener("change", () => { state[id] = $(id).value; refresh(); });
  }
  if ($("channel")) {
    $("channel").value = state.channel;
    $("channel").addEventListener("change", () => setChannel($("channel").value));
  }
  for (const tile of document.querySelectorAll("#tiles .tile")) {
    tile.addEventListener("click", () => {
      state.metric = tile.dataset.metric;
      for (const other of document.querySelectorAll("#tiles .tile")) other.classList.toggle("active", other === tile);
      drawChart();
    });
  }
  for (const tab of document.querySelectorAll(".tab")) {
    tab.addEventListener("click", () => {
      for (const other of document.querySelectorAll(".tab")) other.classList.toggle("active", other === tab);
      $("activity").hidden = tab.dataset.tab !== "activity";
      if ($("usage")) $("usage").hidden = tab.dataset.tab !== "usage";
      if (tab.dataset.tab === "usage") loadUsage();
    });
  }
  if (isPublic) document.title = document.title + " (public)";
  refresh();
})();
