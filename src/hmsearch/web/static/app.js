// hmsearch: progressive enhancement only. Without this file every link still works: a result
// opens the episode page, whose player starts at the passage (#t= media fragment).
// Here: result links play in the page's player; the episode page scrolls to the passage asked
// for, highlights the sentence being said, and seeks when a sentence or chapter is clicked; the
// player gets skip, speed, share-this-moment, keyboard shortcuts and the Media Session (lock screen).
"use strict";

(function () {
  function seekAndPlay(player, start) {
    function go() {
      try { player.currentTime = start; } catch (e) { /* not seekable yet */ }
      var p = player.play();
      if (p && p.catch) { p.catch(function () { /* autoplay refused: the controls are there */ }); }
    }
    if (player.readyState >= 1) { go(); } else { player.addEventListener("loadedmetadata", go, { once: true }); }
  }

  // ---- the player's own controls (both pages) ----------------------------------------------
  // now() -> {episode, title} of what is loaded, or null
  function enhancePlayer(player, now) {
    var controls = document.getElementById("controls");
    if (!controls) { return; }
    controls.hidden = false;
    function skip(seconds) {
      var end = isFinite(player.duration) ? player.duration : Infinity;
      player.currentTime = Math.max(0, Math.min(end, player.currentTime + seconds));
    }
    document.getElementById("back15").addEventListener("click", function () { skip(-15); });
    document.getElementById("fwd30").addEventListener("click", function () { skip(30); });

    var speed = document.getElementById("speed");
    var saved = null;
    try { saved = window.localStorage.getItem("hmsearch-speed"); } catch (e) { /* storage off */ }
    if (saved && speed.querySelector('option[value="' + saved + '"]')) { speed.value = saved; }
    function applySpeed() { player.playbackRate = parseFloat(speed.value) || 1; }
    applySpeed();
    player.addEventListener("loadedmetadata", applySpeed);  // a new src resets the rate
    speed.addEventListener("change", function () {
      applySpeed();
      try { window.localStorage.setItem("hmsearch-speed", speed.value); } catch (e) { /* storage off */ }
    });

    var out = document.getElementById("share-out");
    function share(url) {
      function fallback() {  // no clipboard (plain http, or refused): show the link to copy by hand
        out.textContent = "";
        var label = document.createElement("label");
        label.textContent = "Copy this link: ";
        var field = document.createElement("input");
        field.type = "text"; field.readOnly = true; field.value = url; field.className = "share-link";
        label.appendChild(field);
        out.appendChild(label);
        field.focus(); field.select();
      }
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(url).then(function () {
          out.textContent = "Link copied: " + url;
        }, fallback);
      } else { fallback(); }
    }
    function page(info) { return location.origin + "/episode/" + encodeURIComponent(info.episode); }
    document.getElementById("share").addEventListener("click", function () {
      var info = now();
      if (!info) { out.textContent = "Play something first."; return; }
      share(page(info) + "?t=" + Math.floor(player.currentTime));
    });
    var shareSentence = document.getElementById("share-sentence");
    if (shareSentence) {  // the episode page: the sentence being said, highlighted where it opens
      shareSentence.addEventListener("click", function () {
        var info = now(), li = info && info.sentence ? info.sentence() : null;
        if (!li) { out.textContent = "Play something first."; return; }
        share(page(info) + "?t=" + li.getAttribute("data-start") + "&end=" + li.getAttribute("data-end") + "#" + li.id);
      });
    }

    // the lock screen and headset buttons of a phone
    if ("mediaSession" in navigator) {
      player.addEventListener("play", function () {
        var info = now();
        if (info && window.MediaMetadata) {
          navigator.mediaSession.metadata = new MediaMetadata({ title: info.title, artist: "hmsearch", album: info.title });
        }
      });
      var actions = {
        play: function () { player.play(); },
        pause: function () { player.pause(); },
        seekbackward: function () { skip(-15); },
        seekforward: function () { skip(30); },
        seekto: function (d) { if (d && typeof d.seekTime === "number") { player.currentTime = d.seekTime; } }
      };
      Object.keys(actions).forEach(function (name) {
        try { navigator.mediaSession.setActionHandler(name, actions[name]); } catch (e) { /* not supported */ }
      });
    }
    return skip;
  }

  // ---- keyboard: / search, space play/pause, j/k next/previous, arrows skip -----------------
  function typing(el) {
    if (!el) { return false; }
    var tag = el.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || tag === "BUTTON" || tag === "SUMMARY" ||
      tag === "AUDIO" || el.isContentEditable;
  }
  // step(+1|-1) moves to the next/previous sentence or result
  function keyboard(player, skip, step) {
    document.addEventListener("keydown", function (ev) {
      if (ev.ctrlKey || ev.metaKey || ev.altKey || typing(ev.target)) { return; }
      var box = document.getElementById("find-q") || document.getElementById("q");
      if (ev.key === "/" && box) {
        ev.preventDefault(); box.focus(); box.select();
      } else if (ev.key === " " && player && player.currentSrc) {
        ev.preventDefault();
        if (player.paused) { player.play(); } else { player.pause(); }
      } else if ((ev.key === "j" || ev.key === "k") && step) {
        ev.preventDefault(); step(ev.key === "j" ? 1 : -1);
      } else if ((ev.key === "ArrowLeft" || ev.key === "ArrowRight") && skip && player && player.currentSrc) {
        ev.preventDefault(); skip(ev.key === "ArrowLeft" ? -15 : 30);
      }
    });
  }

  // ---- search page: a result plays in the page's player -----------------------------------
  function enhanceSearch() {
    var bar = document.getElementById("player-bar");
    var player = document.getElementById("player");
    var now = document.getElementById("now-playing");
    if (!bar || !player) { return; }
    var playing = null;
    var skip = enhancePlayer(player, function () {
      return playing ? { episode: playing.getAttribute("data-episode"), title: playing.getAttribute("data-title") } : null;
    });
    var results = Array.prototype.slice.call(document.querySelectorAll("a.play"));
    keyboard(player, skip, function (d) {
      var i = results.indexOf(document.activeElement);
      var next = results[i < 0 ? (d > 0 ? 0 : results.length - 1) : i + d];
      if (next) { next.focus(); next.scrollIntoView({ block: "nearest" }); }
    });
    document.querySelectorAll("a.play[data-audio]").forEach(function (link) {
      link.addEventListener("click", function (ev) {
        if (ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button > 0) { return; } // new tab: the page
        ev.preventDefault();
        var src = link.getAttribute("data-audio");
        var start = parseFloat(link.getAttribute("data-start")) || 0;
        bar.hidden = false;
        if (player.getAttribute("data-src") !== src) {
          player.setAttribute("data-src", src);
          player.preload = "auto";
          player.src = src + "#t=" + start;
        }
        seekAndPlay(player, start);
        var ts = link.querySelector(".ts");
        now.textContent = "Playing " + (link.getAttribute("data-title") || "") + " from " + (ts ? ts.textContent : "");
        document.querySelectorAll("a.play.playing").forEach(function (a) { a.classList.remove("playing"); });
        link.classList.add("playing");
        playing = link;
      });
    });
  }

  // ---- episode page: scroll to the passage, read along, click to seek ----------------------
  function enhanceEpisode() {
    var list = document.getElementById("transcript");
    if (!list) { return; }
    var asked = list.getAttribute("data-asked");
    var first = asked ? document.getElementById(asked) : null;
    if (first && !location.hash) { first.scrollIntoView({ block: "center" }); }
    var player = document.getElementById("player");
    var items = Array.prototype.slice.call(list.querySelectorAll("li.sentence"));
    if (!player) {
      keyboard(null, null, null);
      return;
    }
    var article = list.closest("article");
    var title = document.querySelector("article.episode h1");
    var skip = enhancePlayer(player, function () {
      return {
        episode: article.getAttribute("data-episode"),
        title: title ? title.textContent : "",
        sentence: function () { var i = sentenceAt(player.currentTime); return i >= 0 ? items[i] : null; }
      };
    });
    var starts = items.map(function (li) { return parseFloat(li.getAttribute("data-start")); });
    var follow = document.getElementById("follow");
    var current = null;

    function sentenceAt(t) {
      var lo = 0, hi = starts.length - 1, found = -1;
      while (lo <= hi) {  // the last sentence that starts at or before t
        var mid = (lo + hi) >> 1;
        if (starts[mid] <= t + 0.05) { found = mid; lo = mid + 1; } else { hi = mid - 1; }
      }
      return found;
    }

    function mark() {
      var i = sentenceAt(player.currentTime);
      var li = i >= 0 ? items[i] : null;
      if (li === current) { return; }
      if (current) { current.classList.remove("current"); current.removeAttribute("aria-current"); }
      current = li;
      if (li) {
        li.classList.add("current");
        li.setAttribute("aria-current", "true");
        if (follow && follow.checked && !player.paused) { li.scrollIntoView({ block: "center", behavior: "smooth" }); }
      }
    }
    player.addEventListener("timeupdate", mark);
    player.addEventListener("seeked", mark);

    // chapters: a click seeks there; the chapter being played is marked
    var chapterLinks = Array.prototype.slice.call(document.querySelectorAll("a.chapter"));
    var chapterStarts = chapterLinks.map(function (a) { return parseFloat(a.getAttribute("data-start")) || 0; });
    var currentChapter = null;
    function markChapter() {
      var t = player.currentTime, found = null;
      for (var i = 0; i < chapterStarts.length; i++) { if (chapterStarts[i] <= t + 0.05) { found = chapterLinks[i]; } }
      if (found === currentChapter) { return; }
      if (currentChapter) { currentChapter.classList.remove("current"); currentChapter.removeAttribute("aria-current"); }
      currentChapter = found;
      if (found) { found.classList.add("current"); found.setAttribute("aria-current", "true"); }
    }
    player.addEventListener("timeupdate", markChapter);
    player.addEventListener("seeked", markChapter);
    chapterLinks.forEach(function (a) {
      a.addEventListener("click", function (ev) {
        if (ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button > 0) { return; }
        ev.preventDefault();
        seekAndPlay(player, parseFloat(a.getAttribute("data-start")) || 0);
        if (history.replaceState) { history.replaceState(null, "", a.getAttribute("href")); }
      });
    });

    keyboard(player, skip, function (d) {
      var i = sentenceAt(player.currentTime);
      var li = items[Math.max(0, Math.min(items.length - 1, i + d))];
      if (!li) { return; }
      seekAndPlay(player, parseFloat(li.getAttribute("data-start")) || 0);
      var ts = li.querySelector("a.ts");
      if (ts) { ts.focus({ preventScroll: true }); }
      li.scrollIntoView({ block: "center" });
    });

    list.addEventListener("click", function (ev) {
      var link = ev.target.closest ? ev.target.closest("a.ts") : null;
      if (!link || ev.ctrlKey || ev.metaKey || ev.shiftKey) { return; }
      var li = link.closest("li.sentence");
      ev.preventDefault();
      var start = parseFloat(li.getAttribute("data-start")) || 0;
      seekAndPlay(player, start);
      if (history.replaceState) { history.replaceState(null, "", link.getAttribute("href")); }
    });
  }

  // ---- dates in the reader's own locale (the page writes ISO dates) ---------------------------
  function localDates() {
    document.querySelectorAll("time[datetime]").forEach(function (el) {
      var iso = el.getAttribute("datetime");
      if (!/^\d{4}-\d{2}-\d{2}$/.test(iso)) { return; }
      var d = new Date(iso + "T12:00:00");
      if (isNaN(d.getTime())) { return; }
      el.textContent = d.toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    localDates();
    enhanceSearch();
    enhanceEpisode();
  });
})();
