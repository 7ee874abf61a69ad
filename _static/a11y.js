// Accessible names for the theme's controls (axe-core rules label-content-name-mismatch,
// summary-name and region; tests/test_accessibility.py runs axe on every page).
// Jupyter Book includes every .js file of _static/ in every page.
(function () {
  "use strict";

  function visibleText(element) {
    return (element.innerText || "").replace(/\s+/g, " ").trim();
  }

  // The Chinese edition's words for the names given below (the page's lang is zh-CN).
  var chinese = /^zh/i.test(document.documentElement.lang || "");

  function repair() {
    // A control whose aria-label hides its visible words ("Toggle hidden content" on
    // "Show code cell source", "Search" on "Search Ctrl+K"): speech users say what they
    // see, so the name comes from the content instead.
    document.querySelectorAll("summary[aria-label], button.search-button-field[aria-label]")
      .forEach(function (element) {
        if (element.textContent.trim()) {
          element.removeAttribute("aria-label");
        }
      });

    // The colour-mode button: its icons (glyphs with titles "Light", "Dark") count as
    // visible content that its aria-label "Color mode" does not contain. The icons become
    // decoration and the name a visually hidden text.
    document.querySelectorAll(".theme-switch-button[aria-label]").forEach(function (button) {
      button.querySelectorAll(".theme-switch").forEach(function (icon) {
        icon.removeAttribute("title");
        icon.setAttribute("aria-hidden", "true");
      });
      var name = document.createElement("span");
      name.className = "visually-hidden";
      name.textContent = button.getAttribute("aria-label");
      button.appendChild(name);
      button.removeAttribute("aria-label");
    });

    // The table of contents' expand arrows: a <summary> with only an icon has no name.
    document.querySelectorAll("li.has-children > details > summary").forEach(function (summary) {
      if (visibleText(summary) || summary.getAttribute("aria-label")) {
        return;
      }
      var link = summary.closest("li").querySelector(":scope > a");
      var title = link ? visibleText(link) || link.textContent.trim() : "";
      var label = chinese ? (title ? title + "的小节" : "小节")
                          : (title ? "Sections of " + title : "Sections");
      summary.setAttribute("aria-label", label);
    });

    // The bibliography: docutils marks it as a list of role doc-biblioentry, a role that
    // DPUB-ARIA 1.1 deprecates and that is no list item (aria-required-children).
    document.querySelectorAll('[role="list"] > [role="doc-biblioentry"]').forEach(function (entry) {
      entry.setAttribute("role", "listitem");
    });

    // The book's title above the left sidebar sits in no landmark: it is the way home.
    document.querySelectorAll(".sidebar-primary-item").forEach(function (item) {
      if (item.querySelector(":scope > a.navbar-brand") && !item.closest("nav, [role]")) {
        item.setAttribute("role", "navigation");
        item.setAttribute("aria-label", chinese ? "课程首页" : "Course home");
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", repair);
  } else {
    repair();
  }
})();
