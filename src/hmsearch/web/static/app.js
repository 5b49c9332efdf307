// hmsearch: progressive enhancement only. Without this file every link still works: a result
// opens the episode page, whose player starts at the passage (#t= media fragment).
// Here: result links play in the page's player; the episode page scrolls to the passage asked
// for, highlights the sentence being said, and seeks when a sentence is clicked.
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

  // ---- search page: a result plays in the page's player -----------------------------------
  function enhanceSearch() {
    var bar = document.getElementById("player-bar");
    var player = document.getElementById("player");
    var now = document.getElementById("now-playing");
    if (!bar || !player) { return; }
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
    if (!player) { return; }
    var items = Array.prototype.slice.call(list.querySelectorAll("li.sentence"));
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

  document.addEventListener("DOMContentLoaded", function () {
    enhanceSearch();
    enhanceEpisode();
  });
})();
