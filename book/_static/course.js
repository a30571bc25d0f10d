/* The course book's page script (loaded deferred on every page, after MathJax 3).
 *
 * 1. MathJax 2's Hub for the widget manager (below).
 * 2. Accessible names the theme and the widgets leave out (axe-core, tests/test_browser.py): the colour-mode
 *    button is named "Color mode" but shows the current mode's icon, whose title is its visible text; an
 *    ipywidgets slider handle (role="slider") has no name, so it gets its widget's label ("patch size");
 *    the explorers' frames get alt text saying what they show.
 * 3. The references list (docutils: role="list") holds entries with role="doc-biblioentry", a role that
 *    DPUB-ARIA 1.1 deprecated in favour of "listitem"; assistive tech and axe-core then see a formula in an
 *    entry as a stray child of the list (aria-required-children). The entries become list items.
 *
 * 1.
 * The ipywidgets html-manager still typesets HTML widgets through the MathJax 2 API,
 * MathJax.Hub.Queue(["Typeset", MathJax.Hub, element]); the book loads MathJax 3, which has no Hub, so every
 * HTML widget threw "Cannot read properties of undefined (reading 'Queue')". This gives MathJax 3 the one
 * Hub call the widgets make, mapped to MathJax 3's typesetPromise.
 */
(function () {
  "use strict";
  function typeset(elements) {
    var mj = window.MathJax;
    if (!mj || typeof mj.typesetPromise !== "function") return;
    var ready = mj.startup && mj.startup.promise ? mj.startup.promise : Promise.resolve();
    ready.then(function () { return mj.typesetPromise(elements); }).catch(function (err) {
      console.warn("MathJax could not typeset a widget:", err);
    });
  }
  function shim() {
    var mj = window.MathJax;
    if (!mj || mj.Hub || typeof mj.version !== "string" || mj.version.charAt(0) === "2") return;
    mj.Hub = {
      Queue: function () {
        var elements = [];
        for (var i = 0; i < arguments.length; i++) {
          var cmd = arguments[i];
          if (Array.isArray(cmd) && cmd[0] === "Typeset" && cmd[2]) elements.push(cmd[2]);
        }
        typeset(elements.length ? elements : undefined);
      }
    };
  }
  shim();
  document.addEventListener("DOMContentLoaded", shim);
  window.addEventListener("load", shim);

  // ---- 2. accessible names ---------------------------------------------------------------------------
  function iconTitle(icon) {
    if (!icon) return "";
    var t = icon.getAttribute("title") || (icon.querySelector("title") || {}).textContent || "";
    return t.trim();
  }
  function nameThemeButtons() {
    var mode = document.documentElement.dataset.mode || "auto";
    document.querySelectorAll(".theme-switch-button").forEach(function (button) {
      var title = iconTitle(button.querySelector('.theme-switch[data-mode="' + mode + '"]'));
      if (title) button.setAttribute("aria-label", "Color mode: " + title);
    });
  }
  function nameSliders(root) {
    (root || document).querySelectorAll('.noUi-handle[role="slider"]:not([aria-label])').forEach(function (h) {
      var box = h.closest(".widget-slider, .widget-inline-hbox, .widget-hslider, .widget-vslider");
      var label = box && box.querySelector(".widget-label");
      var text = label ? label.textContent.trim() : "";
      h.setAttribute("aria-label", text || "slider");
    });
  }
  // The explorers' frames (ipywidgets Image views) have no alt text of their own: say what each shows.
  var EXPLORER_ALT = {
    "course-patch-explorer": "Patch-size explorer frame: the image cut into patches, with the attention " +
      "rollout of the model trained at that patch size where there is one",
    "course-head-explorer": "Head-count explorer frame: the [CLS] attention map of each head, or of one head"
  };
  function nameImages(root) {
    Object.keys(EXPLORER_ALT).forEach(function (cls) {
      (root || document).querySelectorAll("." + cls + " img:not([alt])").forEach(function (img) {
        img.setAttribute("alt", EXPLORER_ALT[cls]);
      });
    });
  }
  // myst-nb folds a hidden cell in <summary aria-label="Toggle hidden content">, a name that hides the
  // visible "Show code cell source" from screen readers (axe: label-content-name-mismatch): let the
  // visible text name it.
  function nameFoldedCells() {
    document.querySelectorAll('details > summary[aria-label="Toggle hidden content"]').forEach(function (s) {
      s.removeAttribute("aria-label");
    });
  }

  function names() { nameThemeButtons(); nameSliders(); nameImages(); nameFoldedCells(); }
  document.addEventListener("DOMContentLoaded", names);
  window.addEventListener("load", names);
  new MutationObserver(function (records) {
    for (var i = 0; i < records.length; i++) {
      if (records[i].type === "attributes") { nameThemeButtons(); return; }
    }
    nameSliders();
    nameImages();
  }).observe(document.documentElement, {attributes: true, attributeFilter: ["data-mode"], childList: true,
                                        subtree: true});

  // ---- 3. references entries as list items -------------------------------------------------------------
  function citationsAsListItems() {
    document.querySelectorAll('.citation-list > [role="doc-biblioentry"]').forEach(function (c) {
      c.setAttribute("role", "listitem");
    });
  }
  citationsAsListItems();
  document.addEventListener("DOMContentLoaded", citationsAsListItems);

  // ---- 4. figures wider than a narrow screen ---------------------------------------------------------------
  // A figure stops shrinking where its text would fall under 9 px (course_pkg/book_figures.py gives its <img>
  // a min-width; the explorers' frames get one from course_pkg/widgets.py) and scrolls sideways in its box.
  // Say so in one line under it, only while it does not fit.
  var WIDE_NOTE = "Wider than your screen: scroll the figure sideways to see all of it.";
  function noteFor(img) {
    var widget = img.closest(".widget-subarea");
    var anchor = widget || img.closest(".cell_output");
    if (!anchor) return;
    var box = widget ? img.closest(".widget-box") || widget : anchor;
    var wide = img.getBoundingClientRect().width > box.clientWidth + 1;
    var note = anchor.nextElementSibling;
    var has = note && note.classList.contains("course-wide-note");
    if (wide && !has) {
      note = document.createElement("p");
      note.className = "course-wide-note";
      note.textContent = WIDE_NOTE;
      anchor.insertAdjacentElement("afterend", note);
    } else if (has && !wide && !widget) {
      note.remove();
    }
  }
  function markWide() {
    document.querySelectorAll("img[data-course-readable], .widget-subarea img.widget-image").forEach(noteFor);
  }
  window.addEventListener("load", markWide);
  window.addEventListener("resize", markWide);
  document.addEventListener("load", function (e) {  // an image (a widget frame) got its size
    if (e.target && e.target.tagName === "IMG") markWide();
  }, true);
  new MutationObserver(function () { markWide(); }).observe(document.body || document.documentElement,
                                                            {childList: true, subtree: true});
})();
