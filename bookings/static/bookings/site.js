/* Small enhancements for the server-rendered pages; every page works without them.
 *
 * - shows times in the visitor's zone (detected, or picked in the zone select);
 * - renders the month calendar and the day's slots from the data embedded in the page;
 * - keeps the "payment pending" page up to date and counts a hold down;
 * - copy-link button and live preview of a weekly rule.
 */
(function () {
  "use strict";

  var FORMATS = {
    long: { weekday: "long", month: "long", day: "numeric", year: "numeric", hour: "numeric", minute: "2-digit" },
    datetime: { weekday: "short", month: "short", day: "numeric", hour: "numeric", minute: "2-digit" },
    date: { weekday: "long", month: "long", day: "numeric" },
    time: { hour: "numeric", minute: "2-digit" }
  };

  function $all(selector, root) {
    return Array.prototype.slice.call((root || document).querySelectorAll(selector));
  }

  // --- time zones -------------------------------------------------------------------------

  // Old names browsers still report, to current IANA names: bookings.zones.LEGACY_ZONES
  // (tests/web/test_student_zones.py checks that the two tables agree).
  var LEGACY_ZONES = {
    "Africa/Asmera": "Africa/Asmara", "America/Buenos_Aires": "America/Argentina/Buenos_Aires",
    "America/Catamarca": "America/Argentina/Catamarca", "America/Cordoba": "America/Argentina/Cordoba",
    "America/Fort_Wayne": "America/Indiana/Indianapolis", "America/Godthab": "America/Nuuk",
    "America/Indianapolis": "America/Indiana/Indianapolis", "America/Jujuy": "America/Argentina/Jujuy",
    "America/Louisville": "America/Kentucky/Louisville", "America/Mendoza": "America/Argentina/Mendoza",
    "Asia/Calcutta": "Asia/Kolkata", "Asia/Chongqing": "Asia/Shanghai", "Asia/Chungking": "Asia/Shanghai",
    "Asia/Dacca": "Asia/Dhaka", "Asia/Harbin": "Asia/Shanghai", "Asia/Istanbul": "Europe/Istanbul",
    "Asia/Katmandu": "Asia/Kathmandu", "Asia/Macao": "Asia/Macau", "Asia/Rangoon": "Asia/Yangon",
    "Asia/Saigon": "Asia/Ho_Chi_Minh", "Asia/Tel_Aviv": "Asia/Jerusalem", "Asia/Thimbu": "Asia/Thimphu",
    "Asia/Ujung_Pandang": "Asia/Makassar", "Asia/Ulan_Bator": "Asia/Ulaanbaatar",
    "Atlantic/Faeroe": "Atlantic/Faroe", "Etc/UCT": "UTC", "Etc/UTC": "UTC", "Etc/Universal": "UTC",
    "Etc/Zulu": "UTC", "Europe/Kiev": "Europe/Kyiv", "Europe/Uzhgorod": "Europe/Kyiv",
    "Europe/Zaporozhye": "Europe/Kyiv", "Pacific/Enderbury": "Pacific/Kanton",
    "Pacific/Ponape": "Pacific/Pohnpei", "Pacific/Samoa": "Pacific/Pago_Pago",
    "Pacific/Truk": "Pacific/Chuuk", "UCT": "UTC", "US/Alaska": "America/Anchorage",
    "US/Arizona": "America/Phoenix", "US/Central": "America/Chicago", "US/Eastern": "America/New_York",
    "US/Hawaii": "Pacific/Honolulu", "US/Mountain": "America/Denver", "US/Pacific": "America/Los_Angeles",
    "Universal": "UTC", "Zulu": "UTC"
  };

  function canonical(z) {
    return Object.prototype.hasOwnProperty.call(LEGACY_ZONES, z) ? LEGACY_ZONES[z] : z;
  }

  function isZone(zone) {
    if (!zone) return false;
    try {
      new Intl.DateTimeFormat("en-US", { timeZone: zone });
      return true;
    } catch (e) {
      return false;
    }
  }

  function detectedZone() {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    } catch (e) {
      return "UTC";
    }
  }

  function savedZone() {
    try {
      return window.localStorage.getItem("tz");
    } catch (e) {
      return null;
    }
  }

  function saveZone(zone) {
    try {
      window.localStorage.setItem("tz", zone);
    } catch (e) { /* private mode: the choice lasts for this page only */ }
  }

  var params = new URLSearchParams(window.location.search);
  var zone = canonical([params.get("tz"), savedZone(), detectedZone()].filter(isZone)[0] || "UTC");
  var zoneSource = isZone(params.get("tz")) || isZone(savedZone()) ? "chosen" : "detected";

  // The visitor's choice of clock, remembered in this browser ("12" or "24"); else the locale's.
  function savedClock() {
    try {
      return window.localStorage.getItem("clock");
    } catch (e) {
      return null;
    }
  }

  var clock = savedClock();

  // `at`: another zone than the visitor's (the meeting place's New York time).
  function format(date, kind, locale, at) {
    var options = Object.assign({ timeZone: at || zone }, FORMATS[kind] || FORMATS.datetime);
    if (options.hour && (clock === "12" || clock === "24")) options.hourCycle = clock === "12" ? "h12" : "h23";
    return new Intl.DateTimeFormat(locale, options).format(date);
  }

  function zoneName(z) {
    return z.replace(/_/g, " ");
  }

  function applyZone() {
    $all("time[data-fmt]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      var at = el.getAttribute("data-tz");
      if (!isNaN(when)) el.textContent = format(when, el.getAttribute("data-fmt"), undefined, isZone(at) ? at : null);
    });
    $all("[data-zone-label]").forEach(function (el) { el.textContent = zoneName(zone); });
    $all("input[data-zone-input]").forEach(function (el) { el.value = zone; });
    $all("a[data-zone-link]").forEach(function (el) {
      var url = new URL(el.href, window.location.href);
      url.searchParams.set("tz", zone);
      el.href = url.pathname + url.search;
    });
    $all("[data-zone-source]").forEach(function (el) {
      el.textContent = "Times are shown in " + zoneName(zone) +
        (zoneSource === "detected" ? " (detected from your browser)." : ".");
    });
  }

  // "UTC+1", "UTC-3:30", "UTC" for a zone now, from Intl's "GMT+1".
  function offsetOf(z, date) {
    var name = new Intl.DateTimeFormat("en-US", { timeZone: z, timeZoneName: "shortOffset" })
      .formatToParts(date).filter(function (p) { return p.type === "timeZoneName"; })[0];
    return name ? name.value.replace(/^GMT/, "UTC") : "";
  }

  // The clock in use: the visitor's choice, else their locale's habit.
  function twelveHour() {
    if (clock === "12" || clock === "24") return clock === "12";
    return Boolean(new Intl.DateTimeFormat(undefined, { hour: "numeric" }).resolvedOptions().hour12);
  }

  // "Europe/Berlin — 14:05, UTC+1" (or "2:05 PM" on a 12-hour clock).
  function zoneOption(z, date) {
    var twelve = twelveHour();
    var options = { timeZone: z, hour: twelve ? "numeric" : "2-digit", minute: "2-digit", hourCycle: twelve ? "h12" : "h23" };
    return zoneName(z) + " — " + new Intl.DateTimeFormat("en-US", options).format(date) + ", " + offsetOf(z, date);
  }

  function allZones() {
    var zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
    var seen = {};
    zones.concat([zone, "UTC"]).forEach(function (z) {
      var name = canonical(z);
      if (isZone(name)) seen[name] = true;
    });
    return Object.keys(seen).sort();
  }

  // The zone select, filtered by the search box above it: a name, a city or an offset.
  function setupZoneSelect(select, onChange) {
    var field = select.closest(".zone-field") || select.parentNode;
    var search = field.querySelector("[data-zone-search]");
    var matches = field.querySelector("[data-zone-matches]");
    var toggle = field.querySelector("[data-clock-toggle]");
    var zones = allZones();
    var labels = {};

    function fill() {
      var now = new Date();
      var words = search ? search.value.trim().toLowerCase().replace(/_/g, " ") : "";
      zones.forEach(function (z) { labels[z] = zoneOption(z, now); });
      var hits = zones.filter(function (z) { return !words || labels[z].toLowerCase().indexOf(words) >= 0; });
      // The chosen zone stays in the list (the select shows it) even when it does not match.
      var shown = hits.indexOf(zone) < 0 ? [zone].concat(hits) : hits;
      select.textContent = "";
      shown.forEach(function (z) {
        var option = document.createElement("option");
        option.value = z;
        option.textContent = labels[z] || zoneOption(z, now);
        select.appendChild(option);
      });
      select.value = zone;
      if (matches) {
        matches.textContent = !words ? "" : hits.length
          ? hits.length + " matching time zone" + (hits.length === 1 ? "" : "s") + " in the list below."
          : "No time zone matches: try a city name.";
      }
      return hits;
    }

    function choose(z) {
      if (!isZone(z)) return;
      zone = canonical(z);
      zoneSource = "chosen";
      saveZone(zone);
      var url = new URL(window.location.href);
      url.searchParams.set("tz", zone);
      window.history.replaceState(null, "", url.pathname + url.search);
      applyZone();
      onChange();
    }

    fill();
    select.addEventListener("change", function () { choose(select.value); });
    if (search) {
      search.addEventListener("input", function () {
        var hits = fill();
        // One match, not chosen yet: take it (what typing "Kolkata" means).
        if (hits.length === 1 && hits[0] !== zone && search.value.trim().length >= 3) {
          choose(hits[0]);
          fill();
        }
      });
    }
    if (toggle) {
      toggle.checked = !twelveHour();
      toggle.addEventListener("change", function () {
        clock = toggle.checked ? "24" : "12";
        try {
          window.localStorage.setItem("clock", clock);
        } catch (e) { /* private mode: the choice lasts for this page only */ }
        fill();
        applyZone();
        onChange();
      });
    }
    // The options' local times stay current (not while the list is open).
    window.setInterval(function () { if (document.activeElement !== select) fill(); }, 60000);
  }

  // --- the month picker ------------------------------------------------------------------

  function dayKey(date) {
    var parts = {};
    new Intl.DateTimeFormat("en-US", { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit" })
      .formatToParts(date)
      .forEach(function (p) { parts[p.type] = p.value; });
    return parts.year + "-" + parts.month + "-" + parts.day;
  }

  // A calendar day as a UTC noon Date: safe to step and to label whatever the zone.
  function keyDate(key, plusDays) {
    var p = key.split("-").map(Number);
    return new Date(Date.UTC(p[0], p[1] - 1, p[2] + (plusDays || 0), 12));
  }

  function hidden(words) {
    var span = document.createElement("span");
    span.className = "visually-hidden";
    span.textContent = words;
    return span;
  }

  function label(date, options) {
    return new Intl.DateTimeFormat(undefined, Object.assign({ timeZone: "UTC" }, options)).format(date);
  }

  function pad(n) {
    return (n < 10 ? "0" : "") + n;
  }

  // "2026-12" and a number of months → "2027-01".
  function shiftMonth(month, by) {
    var p = month.split("-").map(Number);
    var d = new Date(Date.UTC(p[0], p[1] - 1 + by, 1));
    return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1);
  }

  function plural(n, word) {
    return n + " " + word + (n === 1 ? "" : "s");
  }

  // A month calendar over the whole horizon (days with open times marked) and the chosen
  // day's slots, all from the data embedded in the page: no request per slot or month.
  function Picker(root) {
    var self = this;
    var data = JSON.parse(document.getElementById(root.getAttribute("data-source")).textContent);
    this.root = root;
    this.length = data.days;
    this.refundHours = typeof data.refund_hours === "number" ? data.refund_hours : null;
    this.href = root.getAttribute("data-href");
    this.fixedMode = root.getAttribute("data-mode") || "";
    this.showPrices = !root.hasAttribute("data-no-prices");
    this.slots = data.slots.map(function (s) {
      return { id: s.id, start: new Date(s.start), end: new Date(s.end), modes: s.modes };
    });
    this.month = null;
    this.day = null;
    this.parts = {
      prev: root.querySelector("[data-prev]"),
      next: root.querySelector("[data-next]"),
      month: root.querySelector("[data-month]"),
      dow: root.querySelector("[data-dow]"),
      days: root.querySelector("[data-days]"),
      heading: root.querySelector("[data-day-heading]"),
      list: root.querySelector("[data-slots]"),
      empty: root.querySelector("[data-empty]"),
      announce: root.querySelector("[data-announce]")
    };
    [[this.parts.prev, -1], [this.parts.next, 1]].forEach(function (pair) {
      pair[0].addEventListener("click", function () {
        self.month = shiftMonth(self.month, pair[1]);
        self.day = null;
        self.render(true);
        // At the first or last month the button just used is disabled: focus the other.
        if (pair[0].disabled) (pair[1] < 0 ? self.parts.next : self.parts.prev).focus();
      });
    });
    // Weekday initials, Sunday first (2026-11-01 was a Sunday).
    for (var i = 0; i < 7; i++) {
      var cell = document.createElement("span");
      cell.textContent = label(keyDate("2026-11-01", i), { weekday: "narrow" });
      this.parts.dow.appendChild(cell);
    }
    root.hidden = false;
  }

  Picker.prototype.mode = function () {
    if (this.fixedMode) return this.fixedMode;
    var checked = document.querySelector("input[data-mode-filter]:checked");
    return checked ? checked.value : "";
  };

  Picker.prototype.render = function (announce) {
    var self = this;
    var parts = this.parts;
    // Day buttons are rebuilt below: remember which one had focus to give it back.
    var active = document.activeElement;
    var refocus = active && active.parentNode === parts.days
      ? Array.prototype.indexOf.call(parts.days.children, active) : -1;

    var mode = this.mode();
    var today = dayKey(new Date());
    var last = keyDate(today, this.length - 1).toISOString().slice(0, 10);
    var byDay = {};
    this.slots.forEach(function (s) {
      if (mode && !s.modes[mode]) return;
      var key = dayKey(s.start);
      if (key < today || key > last) return;
      (byDay[key] = byDay[key] || []).push(s);
    });
    var open = Object.keys(byDay).sort();
    var firstOpen = open[0] || null;
    var minMonth = today.slice(0, 7);
    var maxMonth = last.slice(0, 7);
    if (this.month === null) this.month = (firstOpen || today).slice(0, 7);
    if (this.month < minMonth) this.month = minMonth;
    if (this.month > maxMonth) this.month = maxMonth;
    var month = this.month;
    var inMonth = open.filter(function (d) { return d.slice(0, 7) === month; });
    if (!this.day || this.day.slice(0, 7) !== month || !byDay[this.day]) this.day = inMonth[0] || null;

    var monthName = label(keyDate(month + "-01"), { month: "long", year: "numeric" });
    parts.month.textContent = monthName;
    parts.prev.disabled = month <= minMonth;
    parts.next.disabled = month >= maxMonth;
    parts.days.setAttribute("aria-label", "Days in " + monthName);
    parts.days.textContent = "";
    var first = keyDate(month + "-01");
    for (var i = 0; i < first.getUTCDay(); i++) {
      var blank = document.createElement("span");
      blank.className = "blank";
      parts.days.appendChild(blank);
    }
    var length = new Date(Date.UTC(first.getUTCFullYear(), first.getUTCMonth() + 1, 0)).getUTCDate();
    for (var d = 1; d <= length; d++) {
      var key = month + "-" + pad(d);
      var n = byDay[key] ? byDay[key].length : 0;
      var b = document.createElement("button");
      b.type = "button";
      b.disabled = n === 0;
      b.setAttribute("aria-pressed", String(key === this.day));
      if (key === today) b.setAttribute("aria-current", "date");
      // Visible text stays first in the button's name (what voice control users say).
      var dom = document.createElement("span");
      dom.className = "dom";
      dom.textContent = String(d);
      b.appendChild(dom);
      var mark = document.createElement("span");
      mark.className = n ? "dot" : "dot dot-none";
      mark.setAttribute("aria-hidden", "true");
      b.appendChild(mark);
      b.appendChild(hidden(", " + label(keyDate(key), { weekday: "long", month: "long", day: "numeric" }) +
        ", " + (n ? plural(n, "open time") : "no open times")));
      b.addEventListener("click", (function (day) {
        return function () { self.day = day; self.render(true); };
      })(key));
      parts.days.appendChild(b);
    }

    var chosen = this.day ? byDay[this.day] : [];
    parts.list.textContent = "";
    parts.heading.textContent = chosen.length ? label(keyDate(this.day), { weekday: "long", month: "long", day: "numeric" }) : "";
    parts.heading.hidden = !chosen.length;
    chosen.forEach(function (s) { parts.list.appendChild(self.slotItem(s, mode)); });
    parts.empty.hidden = chosen.length > 0;
    var kind = mode ? " for this kind of session" : "";
    if (!firstOpen) {
      parts.empty.textContent = "No open times in the next " + Math.round(this.length / 7) + " weeks" +
        (mode ? " for this kind of session. Try the other one." : ". Please check back soon.");
    } else if (!chosen.length) {
      var later = open.filter(function (k) { return k.slice(0, 7) > month; }).length;
      parts.empty.textContent = "No open times in " + monthName + kind + ". " +
        (later ? "Try the next month." : "Try the previous month.");
    }
    if (announce) {
      parts.announce.textContent = chosen.length
        ? monthName + ": " + plural(inMonth.length, "day") + " with open times. " +
          plural(chosen.length, "open time") + " on " + parts.heading.textContent
        : parts.empty.textContent;
    }
    if (refocus >= 0) {
      var target = parts.days.children[refocus];
      if (target && !target.disabled) target.focus();
    }
  };

  Picker.prototype.slotItem = function (s, mode) {
    var modes = Object.keys(s.modes);
    var url = new URL(this.href, window.location.href);
    url.searchParams.set("slot", s.id);
    var linkMode = mode || (modes.length === 1 ? modes[0] : "");
    if (linkMode && !this.fixedMode) url.searchParams.set("mode", linkMode);
    url.searchParams.set("tz", zone);
    var a = document.createElement("a");
    a.className = "slot";
    a.href = url.pathname + url.search;
    var time = document.createElement("span");
    time.className = "slot-time";
    time.textContent = format(s.start, "time") + " – " + format(s.end, "time");
    a.appendChild(time);
    // Inside the free-cancellation window already: bookable, but say so on the slot.
    if (this.refundHours !== null && s.start.getTime() - this.refundHours * 3600000 < Date.now()) {
      var late = document.createElement("span");
      late.className = "badge badge-late";
      late.textContent = "No free cancellation";
      a.appendChild(late);
    }
    if (this.showPrices) {
      modes.filter(function (m) { return !mode || m === mode; }).forEach(function (m) {
        var badge = document.createElement("span");
        badge.className = "badge badge-" + m;
        badge.textContent = (m === "remote" ? "Remote" : "In person") + " " + s.modes[m];
        a.appendChild(badge);
      });
    }
    var li = document.createElement("li");
    li.appendChild(a);
    return li;
  };

  // --- the pending-payment page ------------------------------------------------------------

  function watchPayment(el) {
    var url = el.getAttribute("data-poll");
    var status = el.getAttribute("data-status");
    var expires = new Date(el.getAttribute("data-expires"));
    var stopAt = (isNaN(expires) ? Date.now() + 30 * 60000 : expires.getTime()) + 60000;
    function check() {
      if (Date.now() > stopAt) return;
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (body) {
          if (body && body.status !== status) window.location.reload();
          else window.setTimeout(check, 3000);
        })
        .catch(function () { window.setTimeout(check, 10000); });
    }
    window.setTimeout(check, 3000);
    if (!isNaN(expires)) {
      window.setTimeout(function () { window.location.reload(); }, Math.max(expires.getTime() - Date.now() + 1500, 1000));
    }
  }

  // --- the hold's countdown (checkout and pending page) ------------------------------------

  function holdCountdown(el) {
    var expires = new Date(el.getAttribute("data-expires"));
    var left = el.querySelector("[data-hold-left]");
    if (isNaN(expires) || !left) return;
    function expire() {
      el.querySelector("[data-hold-running]").hidden = true;
      el.querySelector("[data-hold-expired]").hidden = false;
      el.classList.remove("info");
      el.classList.add("warning");
      $all("[data-hold-hide]").forEach(function (x) { x.hidden = true; });
    }
    function tick() {
      var ms = expires.getTime() - Date.now();
      if (ms <= 0) { expire(); return; }
      var seconds = Math.ceil(ms / 1000);
      left.textContent = ", " + Math.floor(seconds / 60) + ":" + pad(seconds % 60) + " left";
      window.setTimeout(tick, 1000);
    }
    tick();
  }

  // --- the tutor's rule preview ------------------------------------------------------------

  function livePreview(form) {
    var target = form.querySelector("[data-preview-target]");
    var timer = null;
    form.addEventListener("change", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(function () {
        var body = new FormData(form);
        body.set("action", "preview");
        // form.action would be the button named "action": read the attribute.
        fetch(form.getAttribute("action") || window.location.pathname, { method: "POST", body: body, headers: { "X-Preview": "1" }, credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.text() : null; })
          .then(function (html) { if (html !== null) target.innerHTML = html; })
          .catch(function () { /* the Preview button still works */ });
      }, 300);
    });
  }

  // --- start --------------------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", function () {
    applyZone();
    var pickers = $all("[data-picker]").map(function (root) { return new Picker(root); });
    function renderAll(announce) { pickers.forEach(function (p) { p.render(announce); }); }
    renderAll(false);
    $all("select[data-zone-select]").forEach(function (select) {
      setupZoneSelect(select, function () { renderAll(true); });
    });
    $all("input[data-mode-filter]").forEach(function (radio) {
      radio.addEventListener("change", function () {
        var url = new URL(window.location.href);
        if (radio.value) url.searchParams.set("mode", radio.value);
        else url.searchParams.delete("mode");
        window.history.replaceState(null, "", url.pathname + url.search);
        renderAll(true);
      });
    });
    $all("[data-filters]").forEach(function (form) {
      form.addEventListener("submit", function (e) { e.preventDefault(); });
    });
    $all("[data-js-hide]").forEach(function (el) { el.hidden = true; });
    $all("[data-js-show]").forEach(function (el) { el.hidden = false; });
    // A form sent once stays sent: the button is disabled while the request is on its
    // way (the server also recognises a resent form by its request_key).
    $all("form[data-once]").forEach(function (form) {
      form.addEventListener("submit", function (e) {
        if (form.getAttribute("data-sent")) { e.preventDefault(); return; }
        form.setAttribute("data-sent", "1");
        $all("button[type=submit]", form).forEach(function (button) {
          button.disabled = true;
          button.setAttribute("aria-disabled", "true");
          var busy = button.getAttribute("data-busy-label");
          if (busy) button.textContent = busy;
        });
      });
    });
    // Back to a page that was sent (the browser's page cache): let it be used again.
    window.addEventListener("pageshow", function (e) {
      if (!e.persisted) return;
      $all("form[data-once]").forEach(function (form) {
        form.removeAttribute("data-sent");
        $all("button[type=submit]", form).forEach(function (button) { button.disabled = false; });
      });
    });
    $all("[data-poll]").forEach(watchPayment);
    $all("[data-hold]").forEach(holdCountdown);
    $all("form[data-preview-form]").forEach(livePreview);
    $all("button[data-copy]").forEach(function (button) {
      if (!navigator.clipboard) return;
      button.hidden = false;
      button.addEventListener("click", function () {
        var input = document.getElementById(button.getAttribute("data-copy"));
        navigator.clipboard.writeText(input.value).then(function () { button.textContent = "Copied"; });
      });
    });
    var summary = document.querySelector("[data-focus]");
    if (summary) summary.focus();
  });
})();
