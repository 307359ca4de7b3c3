/* Small enhancements for the server-rendered pages; every page works without them.
 *
 * - shows times in the visitor's zone (detected, or picked in the zone select);
 * - renders the week/day slot picker from the data embedded in the page;
 * - keeps the "payment pending" page up to date;
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
  var zone = [params.get("tz"), savedZone(), detectedZone()].filter(isZone)[0] || "UTC";
  var zoneSource = isZone(params.get("tz")) || isZone(savedZone()) ? "chosen" : "detected";

  function format(date, kind, locale) {
    var options = Object.assign({ timeZone: zone }, FORMATS[kind] || FORMATS.datetime);
    return new Intl.DateTimeFormat(locale, options).format(date);
  }

  function zoneName(z) {
    return z.replace(/_/g, " ");
  }

  function applyZone() {
    $all("time[data-fmt]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (!isNaN(when)) el.textContent = format(when, el.getAttribute("data-fmt"));
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

  function setupZoneSelect(select, onChange) {
    var zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
    if (zones.length) {
      if (zones.indexOf(zone) < 0) zones = zones.concat([zone]);
      if (zones.indexOf("UTC") < 0) zones = zones.concat(["UTC"]);
      zones.sort();
      select.textContent = "";
      zones.forEach(function (z) {
        var option = document.createElement("option");
        option.value = z;
        option.textContent = zoneName(z);
        select.appendChild(option);
      });
    } else if (!$all("option", select).some(function (o) { return o.value === zone; })) {
      var extra = document.createElement("option");
      extra.value = zone;
      extra.textContent = zoneName(zone);
      select.appendChild(extra);
    }
    select.value = zone;
    select.addEventListener("change", function () {
      if (!isZone(select.value)) return;
      zone = select.value;
      zoneSource = "chosen";
      saveZone(zone);
      var url = new URL(window.location.href);
      url.searchParams.set("tz", zone);
      window.history.replaceState(null, "", url.pathname + url.search);
      applyZone();
      onChange();
    });
  }

  // --- the week/day picker ---------------------------------------------------------------

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

  function Picker(root) {
    var data = JSON.parse(document.getElementById(root.getAttribute("data-source")).textContent);
    this.root = root;
    this.length = data.days;
    this.href = root.getAttribute("data-href");
    this.fixedMode = root.getAttribute("data-mode") || "";
    this.showPrices = !root.hasAttribute("data-no-prices");
    this.slots = data.slots.map(function (s) {
      return { id: s.id, start: new Date(s.start), end: new Date(s.end), modes: s.modes };
    });
    this.week = null;
    this.day = null;
    this.parts = {
      weeks: root.querySelector("[data-weeks]"),
      days: root.querySelector("[data-days]"),
      heading: root.querySelector("[data-day-heading]"),
      list: root.querySelector("[data-slots]"),
      empty: root.querySelector("[data-empty]"),
      announce: root.querySelector("[data-announce]")
    };
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
    // Buttons are rebuilt below: remember which one had focus to give it back.
    var active = document.activeElement;
    var refocus = null;
    [parts.weeks, parts.days].forEach(function (box) {
      if (active && active.parentNode === box) refocus = [box, Array.prototype.indexOf.call(box.children, active)];
    });

    var mode = this.mode();
    var today = dayKey(new Date());
    var days = [];
    for (var i = 0; i < this.length; i++) days.push(keyDate(today, i).toISOString().slice(0, 10));
    var byDay = {};
    this.slots.forEach(function (s) {
      if (mode && !s.modes[mode]) return;
      var key = dayKey(s.start);
      (byDay[key] = byDay[key] || []).push(s);
    });
    var isOpen = function (d) { return Boolean(byDay[d]); };
    var firstOpen = days.filter(isOpen)[0] || null;
    if (this.week === null) this.week = firstOpen ? Math.floor(days.indexOf(firstOpen) / 7) : 0;
    var weekDays = days.slice(this.week * 7, this.week * 7 + 7);
    if (!this.day || weekDays.indexOf(this.day) < 0 || !byDay[this.day]) {
      this.day = weekDays.filter(isOpen)[0] || null;
    }

    parts.weeks.textContent = "";
    for (var w = 0; w * 7 < days.length; w++) {
      var span = days.slice(w * 7, w * 7 + 7);
      var count = span.reduce(function (n, d) { return n + (byDay[d] ? byDay[d].length : 0); }, 0);
      var first = keyDate(span[0]);
      var last = keyDate(span[span.length - 1]);
      var button = document.createElement("button");
      button.type = "button";
      button.setAttribute("aria-pressed", String(w === this.week));
      button.textContent = label(first, { month: "short", day: "numeric" }) + " – " + label(last, { month: "short", day: "numeric" });
      button.appendChild(hidden(", " + count + " open time" + (count === 1 ? "" : "s")));
      button.addEventListener("click", (function (week) {
        return function () { self.week = week; self.day = null; self.render(true); };
      })(w));
      parts.weeks.appendChild(button);
    }

    parts.days.textContent = "";
    weekDays.forEach(function (d) {
      var n = byDay[d] ? byDay[d].length : 0;
      var date = keyDate(d);
      var b = document.createElement("button");
      b.type = "button";
      b.disabled = n === 0;
      b.setAttribute("aria-pressed", String(d === self.day));
      // Visible text stays part of the button's name (what voice control users say).
      var dow = document.createElement("span");
      dow.className = "dow";
      dow.textContent = label(date, { weekday: "short" });
      var dom = document.createElement("span");
      dom.className = "dom";
      dom.textContent = label(date, { day: "numeric" });
      var count = document.createElement("span");
      count.className = "count";
      if (n) {
        count.appendChild(hidden(", "));
        count.appendChild(document.createTextNode(String(n)));
        count.appendChild(hidden(" open time" + (n === 1 ? "" : "s")));
      } else {
        var dash = document.createElement("span");
        dash.setAttribute("aria-hidden", "true");
        dash.textContent = "–";
        count.appendChild(dash);
        count.appendChild(hidden(", no open times"));
      }
      b.appendChild(dow);
      b.appendChild(document.createTextNode(" "));
      b.appendChild(dom);
      b.appendChild(count);
      b.addEventListener("click", function () { self.day = d; self.render(true); });
      parts.days.appendChild(b);
    });

    var chosen = this.day ? byDay[this.day] : [];
    parts.list.textContent = "";
    parts.heading.textContent = chosen.length ? label(keyDate(this.day), { weekday: "long", month: "long", day: "numeric" }) : "";
    parts.heading.hidden = !chosen.length;
    chosen.forEach(function (s) { parts.list.appendChild(self.slotItem(s, mode)); });
    parts.empty.hidden = chosen.length > 0;
    if (!firstOpen) {
      parts.empty.textContent = "No open times in the next four weeks" +
        (mode ? " for this kind of session. Try the other one." : ". Please check back soon.");
    } else if (!chosen.length) {
      parts.empty.textContent = "No open times this week" + (mode ? " for this kind of session" : "") + ". Try another week.";
    }
    if (announce) {
      parts.announce.textContent = chosen.length
        ? chosen.length + " open time" + (chosen.length === 1 ? "" : "s") + " on " + parts.heading.textContent
        : parts.empty.textContent;
    }
    if (refocus) {
      var target = refocus[0].children[refocus[1]];
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
