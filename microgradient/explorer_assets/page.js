/* microgradient explorer: the page. Steps through the forward and backward pass
 * of the graph drawn in the page's SVG, explains each step with numbers, and
 * recomputes everything when a leaf is edited (with microgradientEvaluator).
 *
 * Contract for scripts and tests: window.microgradient.explorers holds one
 * object per explorer on the page, each with state() -> {step, total, nodes:
 * [{id, label, op, value, grad, error}]} (value null before the forward pass
 * computes the node, grad null before the backward pass reaches it), step(k)
 * and setLeaf(label, value).
 */
(function () {
  "use strict";

  var core = microgradientEvaluator;
  var formatNumber = core.formatNumber;
  var TIMES = "\u00d7";

  function element(tag, attributes, text) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) {
      node.setAttribute(name, attributes[name]);
    });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function revive(x) {
    return typeof x === "string" ? Number(x) : x;
  }

  /* A text element whose number changes: the text around the number is kept. */
  function NumberSlot(text, initial, spec) {
    this.text = text;
    var shown = formatNumber(initial, spec);
    var content = text.textContent;
    var at = shown === "" ? -1 : content.indexOf(shown);
    this.prefix = at < 0 ? "" : content.slice(0, at);
    this.suffix = at < 0 ? "" : content.slice(at + shown.length);
    this.current = content;
    // a number too wide for its place was squeezed to fit: squeeze new text only as much
    this.squeeze = text.getAttribute("textLength");
  }

  NumberSlot.prototype.set = function (words) {
    var content = words === "" ? "" : this.prefix + words + this.suffix;
    if (content !== this.current) {
      this.text.textContent = content;
      this.current = content;
      if (this.squeeze !== null) {
        this.text.removeAttribute("textLength");
        if (this.text.getComputedTextLength() > Number(this.squeeze)) this.text.setAttribute("textLength", this.squeeze);
      }
    }
  };

  function Explorer(root) {
    var data = JSON.parse(root.querySelector("script.mg-data").textContent);
    var program = data.program;
    program.nodes.forEach(function (node) {
      node.value = revive(node.value);
      node.constant = revive(node.constant);
      if (node.coefficients) node.coefficients = node.coefficients.map(revive);
      if (node.locals) node.locals = node.locals.map(revive);
    });
    this.root = root;
    this.program = program;
    this.spec = data.number_format;
    this.compiled = core.compile(program);
    this.consumers = core.consumersOf(program);
    this.operations = [];
    for (var slot = 0; slot < program.nodes.length; slot++) {
      if (program.nodes[slot].op !== "") this.operations.push(slot);
    }
    var forwardSteps = this.operations.length;
    this.total = 2 * forwardSteps + 1;
    this.leafValues = {};
    this.current = this.total;
    this.selected = null;
    this.playing = null;
    this.result = core.evaluate(program, null, this.compiled);
    this.findDrawing();
    this.buildControls();
    this.buildLeaves();
    this.render();
  }

  Explorer.prototype.name = function (slot) {
    var node = this.program.nodes[slot];
    return node.label || "v" + slot;
  };

  Explorer.prototype.findDrawing = function () {
    var self = this;
    var svg = this.root.querySelector(".mg-graph svg");
    fitToWidth(svg, this.root.querySelector(".mg-graph"));
    var first = core.evaluate(this.program, null, this.compiled);
    this.nodeGroups = {};
    this.errorLabels = {};
    this.nodeSlots = {};
    svg.querySelectorAll("g.mg-node").forEach(function (group) {
      var slot = Number(group.getAttribute("data-node"));
      self.nodeGroups[slot] = group;
      group.setAttribute("tabindex", "0");
      group.setAttribute("role", "button");
      group.setAttribute("aria-label", "Node " + self.name(slot));
      var tooltip = document.createElementNS("http://www.w3.org/2000/svg", "title");
      tooltip.textContent = self.name(slot);
      group.insertBefore(tooltip, group.firstChild);
      self.nodeSlots[slot] = {
        value: slotsOf(group, "text.mg-value", first.values[slot], self.spec),
        grad: slotsOf(group, "text.mg-grad", first.grads ? first.grads[slot] : null, self.spec),
      };
      self.listen(group, { node: slot });
    });
    this.edges = [];
    svg.querySelectorAll("g.mg-edge").forEach(function (group) {
      var to = group.getAttribute("data-to");
      var edge = {
        group: group,
        from: Number(group.getAttribute("data-from")),
        to: to === "output" ? null : Number(to),
        operand: Number(group.getAttribute("data-operand") || 0),
      };
      var initialGrad = edge.to === null ? 1 : first.contributions ? first.contributions[edge.to][edge.operand] : null;
      if (edge.to === null && !first.grads) initialGrad = null;
      edge.value = slotsOf(group, "text.mg-value", first.values[edge.from], self.spec);
      edge.grad = slotsOf(group, "text.mg-grad", initialGrad, self.spec);
      group.setAttribute("tabindex", "0");
      group.setAttribute("role", "button");
      group.setAttribute(
        "aria-label",
        "Edge from " + self.name(edge.from) + " to " + (edge.to === null ? "the output" : self.name(edge.to))
      );
      self.listen(group, { edge: edge });
      self.edges.push(edge);
    });
  };

  /* A drawing wider than its place is shrunk to fit, down to half its size; past that it
   * scrolls, so its text stays readable. */
  function fitToWidth(svg, area) {
    var box = svg.viewBox.baseVal;
    if (!box || !box.width) return;
    var natural = svg.width.baseVal.value || box.width; // CSS pixels
    function fit() {
      var scale = Math.max(0.5, Math.min(1, (area.clientWidth - 16) / natural));
      svg.style.width = natural * scale + "px";
      svg.style.height = (natural * scale * box.height) / box.width + "px";
    }
    fit();
    window.addEventListener("resize", fit);
  }

  function slotsOf(group, selector, initial, spec) {
    return Array.prototype.map.call(group.querySelectorAll(selector), function (text) {
      return new NumberSlot(text, initial, spec);
    });
  }

  Explorer.prototype.listen = function (group, target) {
    var self = this;
    group.addEventListener("mouseenter", function () {
      self.describe(target);
    });
    group.addEventListener("mouseleave", function () {
      self.describe(self.selected);
    });
    group.addEventListener("focus", function () {
      self.describe(target);
    });
    function select() {
      self.selected = target;
      self.describe(target);
    }
    group.addEventListener("click", select);
    group.addEventListener("keydown", function (event) {
      if (event.key === "Enter") select();
    });
  };

  Explorer.prototype.button = function (label, text, action) {
    var button = element("button", { type: "button", "aria-label": label, title: label }, text);
    button.addEventListener("click", action);
    return button;
  };

  Explorer.prototype.buildControls = function () {
    var self = this;
    var bar = this.root.querySelector(".mg-controls");
    bar.appendChild(
      this.button("Reset", "\u21ba Reset", function () {
        self.pause();
        self.step(0);
      })
    );
    bar.appendChild(
      this.button("Step back", "\u25c0 Step back", function () {
        self.pause();
        self.step(self.current - 1);
      })
    );
    this.playButton = this.button("Play", "\u25b6 Play", function () {
      self.togglePlay();
    });
    bar.appendChild(this.playButton);
    bar.appendChild(
      this.button("Step forward", "Step forward \u25b6", function () {
        self.pause();
        self.step(self.current + 1);
      })
    );
    this.slider = element("input", {
      type: "range",
      min: "0",
      max: String(this.total),
      value: String(this.current),
      "aria-label": "Step",
      class: "mg-step-slider",
    });
    this.slider.addEventListener("input", function () {
      self.pause();
      self.step(Number(self.slider.value));
    });
    bar.appendChild(this.slider);
    this.caption = element("span", { class: "mg-caption", "aria-live": "polite" });
    bar.appendChild(this.caption);
    var speedLabel = element("label", { class: "mg-speed" }, "Speed ");
    this.speed = element("input", { type: "range", min: "0.5", max: "8", step: "0.5", value: "2", "aria-label": "Speed (steps per second)" });
    speedLabel.appendChild(this.speed);
    this.speed.addEventListener("input", function () {
      if (self.playing !== null) {
        self.pause();
        self.togglePlay();
      }
    });
    bar.appendChild(speedLabel);
  };

  Explorer.prototype.buildLeaves = function () {
    var self = this;
    var box = this.root.querySelector(".mg-leaves");
    this.leafInputs = [];
    var seen = {};
    this.program.nodes.forEach(function (node, slot) {
      if (node.op !== "") return;
      var name = self.name(slot);
      seen[name] = (seen[name] || 0) + 1;
    });
    this.program.nodes.forEach(function (node, slot) {
      if (node.op !== "") return;
      var name = seen[self.name(slot)] === 1 ? self.name(slot) : self.name(slot) + " #" + slot;
      node.leafName = name;
      var row = element("div", { class: "mg-leaf" });
      var span = Math.max(1, 2 * Math.abs(node.value));
      var label = element("label", {}, self.name(slot));
      var field = element("input", {
        type: "number",
        step: "any",
        value: String(node.value),
        "data-leaf": name,
        "aria-label": "Value of " + name,
      });
      var slider = element("input", {
        type: "range",
        min: String(node.value - span),
        max: String(node.value + span),
        step: String(span / 100),
        value: String(node.value),
        "data-leaf-slider": name,
        "aria-label": "Slide " + name,
      });
      label.appendChild(field);
      row.appendChild(label);
      row.appendChild(slider);
      var disabled = self.compiled.unavailable;
      if (disabled) {
        field.disabled = true;
        slider.disabled = true;
      }
      field.addEventListener("input", function () {
        if (field.value === "" || isNaN(Number(field.value))) return;
        slider.value = field.value;
        self.setSlot(slot, Number(field.value));
      });
      slider.addEventListener("input", function () {
        field.value = slider.value;
        self.setSlot(slot, Number(slider.value));
      });
      box.appendChild(row);
      self.leafInputs.push({ slot: slot, field: field, slider: slider });
    });
    if (this.compiled.unavailable) {
      box.appendChild(element("p", { class: "mg-note" }, "Editing is off: " + this.compiled.unavailable + "."));
    }
    var check = this.root.querySelector(".mg-check");
    check.appendChild(
      this.button("Check gradients", "Check gradients", function () {
        self.checkGradients();
      })
    );
    check.firstChild.disabled = !!this.compiled.unavailable;
    this.checkOutput = element("div", { class: "mg-check-output", "aria-live": "polite" });
    check.appendChild(this.checkOutput);
  };

  Explorer.prototype.setSlot = function (slot, value) {
    if (this.compiled.unavailable) throw new Error("editing is off: " + this.compiled.unavailable);
    this.leafValues[slot] = value;
    this.result = core.evaluate(this.program, this.leafValues, this.compiled);
    this.checkOutput.textContent = "";
    this.render();
  };

  /* setLeaf(label, value): every leaf with that label (or input name) takes the value. */
  Explorer.prototype.setLeaf = function (label, value) {
    var self = this;
    var found = false;
    this.leafInputs.forEach(function (leaf) {
      var node = self.program.nodes[leaf.slot];
      if (node.label === label || node.leafName === label) {
        found = true;
        leaf.field.value = String(value);
        leaf.slider.value = String(value);
        if (self.compiled.unavailable) throw new Error("editing is off: " + self.compiled.unavailable);
        self.leafValues[leaf.slot] = Number(value);
      }
    });
    if (!found) throw new Error("no leaf is labelled " + JSON.stringify(label));
    this.result = core.evaluate(this.program, this.leafValues, this.compiled);
    this.checkOutput.textContent = "";
    this.render();
  };

  Explorer.prototype.step = function (k) {
    this.current = Math.max(0, Math.min(this.total, Math.round(Number(k) || 0)));
    this.render();
  };

  Explorer.prototype.togglePlay = function () {
    var self = this;
    if (this.playing !== null) {
      this.pause();
      return;
    }
    if (this.current >= this.total) this.step(0);
    this.playing = setInterval(function () {
      if (self.current >= self.total) self.pause();
      else self.step(self.current + 1);
    }, 1000 / Number(this.speed.value));
    this.playButton.setAttribute("aria-label", "Pause");
    this.playButton.title = "Pause";
    this.playButton.textContent = "\u2016 Pause";
  };

  Explorer.prototype.pause = function () {
    if (this.playing === null) return;
    clearInterval(this.playing);
    this.playing = null;
    this.playButton.setAttribute("aria-label", "Play");
    this.playButton.title = "Play";
    this.playButton.textContent = "\u25b6 Play";
  };

  /* What is known at the current step: nodes computed, gradients so far, edges done. */
  Explorer.prototype.moment = function () {
    var ops = this.operations;
    var forward = Math.min(this.current, ops.length);
    var computed = {};
    this.program.nodes.forEach(function (node, slot) {
      if (node.op === "") computed[slot] = true;
    });
    for (var i = 0; i < forward; i++) computed[ops[i]] = true;
    var seeded = this.current > ops.length && this.result.grads !== null;
    var backward = seeded ? this.current - ops.length - 1 : 0;
    var grads = {};
    var processed = {};
    var root = this.program.output;
    if (seeded) grads[root] = 1;
    for (var b = 0; b < backward; b++) {
      var slot = ops[ops.length - 1 - b];
      processed[slot] = true;
      var args = this.program.nodes[slot].args;
      for (var j = 0; j < args.length; j++) {
        grads[args[j]] = (grads[args[j]] === undefined ? 0 : grads[args[j]]) + this.result.contributions[slot][j];
      }
    }
    var active = null;
    if (this.current >= 1 && this.current <= ops.length) active = ops[this.current - 1];
    else if (this.current === ops.length + 1) active = root;
    else if (backward > 0) active = ops[ops.length - backward];
    return { computed: computed, seeded: seeded, grads: grads, processed: processed, active: active, backward: backward };
  };

  Explorer.prototype.render = function () {
    var self = this;
    var moment = this.moment();
    var result = this.result;
    var spec = this.spec;
    this.moment_ = moment;
    Object.keys(this.nodeGroups).forEach(function (key) {
      var slot = Number(key);
      var group = self.nodeGroups[slot];
      var error = result.errors[slot];
      var shown = moment.computed[slot];
      var slots = self.nodeSlots[slot];
      slots.value.forEach(function (s) {
        s.set(!shown ? "" : error ? "error" : formatNumber(result.values[slot], spec));
      });
      slots.grad.forEach(function (s) {
        s.set(slot in moment.grads ? formatNumber(moment.grads[slot], spec) : "");
      });
      toggle(group, "mg-pending", !shown);
      toggle(group, "mg-error", shown && error !== null);
      toggle(group, "mg-active", moment.active === slot);
      toggle(group, "mg-processed", !!moment.processed[slot]);
      self.errorLabel(slot, shown ? error : null);
    });
    this.edges.forEach(function (edge) {
      // a value travels along an edge when the node it feeds is computed
      var consumer = edge.to === null ? self.program.output : edge.to;
      var shown = moment.computed[consumer] && result.errors[edge.from] === null;
      edge.value.forEach(function (s) {
        s.set(shown ? formatNumber(result.values[edge.from], spec) : "");
      });
      var grad = null;
      if (edge.to === null) grad = moment.seeded ? 1 : null;
      else if (moment.processed[edge.to]) grad = result.contributions[edge.to][edge.operand];
      edge.grad.forEach(function (s) {
        s.set(grad === null ? "" : formatNumber(grad, spec));
      });
      toggle(edge.group, "mg-pending", !shown);
      var seeding = self.current === self.operations.length + 1;
      var active = seeding ? edge.to === null : moment.active !== null && edge.to === moment.active;
      toggle(edge.group, "mg-active", active);
    });
    this.slider.value = String(this.current);
    this.caption.textContent = this.stepCaption(moment);
    this.root.querySelector(".mg-explain").replaceChildren(this.explainStep(moment));
    this.describe(this.selected);
    this.showErrors();
  };

  /* The words of a domain error, written under the node that failed. */
  Explorer.prototype.errorLabel = function (slot, error) {
    var group = this.nodeGroups[slot];
    var label = this.errorLabels[slot];
    var direct = error !== null && this.result.failed !== null && error.indexOf("not computed") !== 0;
    if (!direct) {
      if (label) {
        label.remove();
        delete this.errorLabels[slot];
        group.removeAttribute("data-error");
      }
      return;
    }
    group.setAttribute("data-error", error);
    if (!label) {
      label = document.createElementNS("http://www.w3.org/2000/svg", "text");
      label.setAttribute("class", "mg-error-label");
      label.setAttribute("text-anchor", "middle");
      group.appendChild(label);
      this.errorLabels[slot] = label;
    }
    var box = group.getBBox();
    label.setAttribute("x", String(box.x + box.width / 2));
    label.setAttribute("y", String(box.y + box.height + 12));
    label.textContent = error;
  };

  function toggle(node, name, on) {
    if (on) node.classList.add(name);
    else node.classList.remove(name);
  }

  Explorer.prototype.stepCaption = function (moment) {
    var ops = this.operations.length;
    var phase = this.current === 0 ? "inputs" : this.current <= ops ? "forward pass" : this.current === ops + 1 ? "seed" : "backward pass";
    return "Step " + this.current + " of " + this.total + " \u00b7 " + phase;
  };

  Explorer.prototype.operandNames = function (slot) {
    var self = this;
    return this.program.nodes[slot].args.map(function (arg) {
      return self.name(arg);
    });
  };

  Explorer.prototype.formula = function (slot) {
    var node = this.program.nodes[slot];
    var op = this.compiled.ops[node.op];
    if (!op) return node.op + "(" + this.operandNames(slot).join(", ") + ")";
    return op.formula(this.operandNames(slot), node.constant, node.coefficients || []);
  };

  Explorer.prototype.derivativeWords = function (slot, j) {
    var node = this.program.nodes[slot];
    var op = this.compiled.ops[node.op];
    var names = this.operandNames(slot);
    var local = this.result.locals[slot] ? formatNumber(this.result.locals[slot][j], this.spec) : "?";
    var rule = op ? op.derivative(names, node.constant, j, node.coefficients || []) : "recorded by Python";
    return "\u2202(" + this.formula(slot) + ")/\u2202" + names[j] + " = " + rule + " = " + local;
  };

  function paragraph(parent, text, className) {
    parent.appendChild(element("p", className ? { class: className } : {}, text));
  }

  Explorer.prototype.explainStep = function (moment) {
    var box = document.createDocumentFragment();
    var ops = this.operations;
    var spec = this.spec;
    var self = this;
    var result = this.result;
    var title = element("h2", {}, this.stepCaption(moment));
    box.appendChild(title);
    if (this.current === 0) {
      paragraph(box, "The inputs are set. Step forward (\u2192) computes the graph one node at a time.");
      return box;
    }
    if (this.current <= ops.length) {
      var slot = ops[this.current - 1];
      var node = this.program.nodes[slot];
      paragraph(box, "Forward: " + this.name(slot) + " = " + this.formula(slot));
      var operands = node.args
        .map(function (arg, j) {
          return self.operandNames(slot)[j] + " = " + formatNumber(result.values[arg], spec);
        })
        .filter(function (words, j, all) {
          return all.indexOf(words) === j;
        })
        .join(", ");
      if (operands) paragraph(box, "where " + operands);
      if (result.errors[slot]) paragraph(box, "Error: " + result.errors[slot], "mg-error-text");
      else paragraph(box, this.name(slot) + " = " + formatNumber(result.values[slot], spec), "mg-result");
      return box;
    }
    if (result.grads === null) {
      paragraph(box, "No gradients: the forward pass failed at " + this.name(result.failed) + " (" + result.errors[result.failed] + ").", "mg-error-text");
      return box;
    }
    if (this.current === ops.length + 1) {
      paragraph(box, "Backward: the pass starts at the output with \u2202" + this.name(this.program.output) + "/\u2202" + this.name(this.program.output) + " = 1.");
      return box;
    }
    var active = moment.active;
    var upstream = result.grads[active];
    paragraph(box, "Backward: " + this.name(active) + " = " + this.formula(active) + " passes its gradient " + formatNumber(upstream, spec) + " back to its operands.");
    var list = element("ul");
    this.program.nodes[active].args.forEach(function (arg, j) {
      var item = element("li");
      paragraph(item, self.derivativeWords(active, j));
      paragraph(
        item,
        "upstream " + TIMES + " local = " + formatNumber(upstream, spec) + " " + TIMES + " " + formatNumber(result.locals[active][j], spec) + " = " + formatNumber(result.contributions[active][j], spec),
        "mg-grad-text"
      );
      var sum = self.sumWords(arg, moment);
      if (sum) paragraph(item, sum);
      list.appendChild(item);
    });
    box.appendChild(list);
    if (this.current === this.total) paragraph(box, "Done: every gradient is computed.");
    return box;
  };

  /* At a node used several times: its gradient as the sum of the contributions so far. */
  Explorer.prototype.sumWords = function (slot, moment) {
    var uses = this.consumers[slot];
    if (uses.length < 2) return "";
    var spec = this.spec;
    var result = this.result;
    var parts = [];
    var pending = 0;
    uses.forEach(function (use) {
      if (moment.processed[use[0]]) parts.push(formatNumber(result.contributions[use[0]][use[1]], spec));
      else pending++;
    });
    var total = moment.grads[slot];
    var written = parts.map(function (part, i) {
      if (i === 0) return part;
      return part.charAt(0) === "\u2212" ? "\u2212 " + part.slice(1) : "+ " + part;
    });
    return (
      this.name(slot) + " is used " + uses.length + " times: grad " + this.name(slot) + " = " + written.join(" ") +
      " = " + formatNumber(total === undefined ? 0 : total, spec) + (pending ? " so far (" + pending + " to come)" : "")
    );
  };

  /* The paths from a node to the root, each the product of its local derivatives. */
  Explorer.prototype.paths = function (slot, limit) {
    var self = this;
    var found = [];
    var root = this.program.output;
    function walk(at, names, factors) {
      if (found.length >= limit) return;
      if (at === root) {
        found.push({ names: names, factors: factors });
        return;
      }
      self.consumers[at].forEach(function (use) {
        walk(use[0], names.concat([self.name(use[0])]), factors.concat([self.result.locals[use[0]][use[1]]]));
      });
    }
    walk(slot, [this.name(slot)], []);
    var counts = this.program.nodes.map(function () {
      return 0;
    });
    counts[root] = 1;
    for (var s = root - 1; s >= 0; s--) {
      this.consumers[s].forEach(function (use) {
        counts[s] += counts[use[0]];
      });
    }
    return { paths: found, count: counts[slot] };
  };

  Explorer.prototype.pathWords = function (box, slot) {
    var spec = this.spec;
    var found = this.paths(slot, 6);
    if (slot === this.program.output || found.count === 0) return;
    paragraph(box, "Paths to the output (" + found.count + "), each the product of the local derivatives along it:");
    var list = element("ul");
    found.paths.forEach(function (path) {
      var product = path.factors.reduce(function (p, f) {
        return p * f;
      }, 1);
      list.appendChild(
        element(
          "li",
          {},
          path.names.join(" \u2192 ") + ": " + path.factors.map(function (f) {
            return formatNumber(f, spec);
          }).join(" " + TIMES + " ") + " = " + formatNumber(product, spec)
        )
      );
    });
    box.appendChild(list);
    if (found.count > found.paths.length) paragraph(box, "\u2026 and " + (found.count - found.paths.length) + " more; their sum is the gradient.");
    else if (found.count > 1) paragraph(box, "Their sum is the gradient, " + formatNumber(this.result.grads[slot], spec) + ".");
  };

  Explorer.prototype.describe = function (target) {
    var box = this.root.querySelector(".mg-detail");
    var content = document.createDocumentFragment();
    var result = this.result;
    var spec = this.spec;
    var self = this;
    if (target && "node" in target) {
      var slot = target.node;
      var node = this.program.nodes[slot];
      content.appendChild(element("h2", {}, this.name(slot) + (node.op ? " = " + this.formula(slot) : " (input)")));
      if (result.errors[slot]) paragraph(content, "Error: " + result.errors[slot], "mg-error-text");
      else paragraph(content, "value " + formatNumber(result.values[slot], spec), "mg-value-text");
      if (result.grads !== null) {
        paragraph(
          content,
          "grad \u2202" + this.name(this.program.output) + "/\u2202" + this.name(slot) + " = " + formatNumber(result.grads[slot], spec) + " (after the whole backward pass)",
          "mg-grad-text"
        );
        if (this.consumers[slot].length > 1) paragraph(content, this.sumWords(slot, { processed: allOf(this.operations), grads: result.grads }));
        this.pathWords(content, slot);
      }
    } else if (target && "edge" in target) {
      var edge = target.edge;
      if (edge.to === null) {
        content.appendChild(element("h2", {}, "The output " + this.name(edge.from)));
        paragraph(content, "The backward pass starts here with the gradient 1.");
      } else {
        content.appendChild(element("h2", {}, this.name(edge.from) + " \u2192 " + this.name(edge.to)));
        if (result.grads !== null && result.locals[edge.to]) {
          paragraph(content, this.derivativeWords(edge.to, edge.operand));
          paragraph(
            content,
            "upstream " + TIMES + " local = " + formatNumber(result.grads[edge.to], spec) + " " + TIMES + " " +
              formatNumber(result.locals[edge.to][edge.operand], spec) + " = " + formatNumber(result.contributions[edge.to][edge.operand], spec),
            "mg-grad-text"
          );
          this.pathWords(content, edge.to);
        } else paragraph(content, "No gradient: the forward pass failed.", "mg-error-text");
      }
    } else {
      paragraph(content, "Hover over or click a node or an edge to see its numbers.", "mg-note");
    }
    box.replaceChildren(content);
    Object.keys(this.nodeGroups).forEach(function (key) {
      toggle(self.nodeGroups[key], "mg-selected", !!(target && target.node === Number(key)));
    });
  };

  function allOf(slots) {
    var set = {};
    slots.forEach(function (slot) {
      set[slot] = true;
    });
    return set;
  }

  Explorer.prototype.showErrors = function () {
    var box = this.root.querySelector(".mg-errors");
    var self = this;
    var words = [];
    this.result.errors.forEach(function (error, slot) {
      if (error !== null && self.result.failed === slot) words.push(self.name(slot) + ": " + error);
    });
    box.textContent = words.join("\n");
    box.hidden = words.length === 0;
  };

  /* Central finite differences of the output for every leaf, against the gradients. */
  Explorer.prototype.checkGradients = function () {
    var self = this;
    var out = this.checkOutput;
    var spec = this.spec;
    var table = element("table");
    var head = element("tr");
    ["input", "gradient", "finite difference", ""].forEach(function (text) {
      head.appendChild(element("th", {}, text));
    });
    table.appendChild(head);
    var agree = 0;
    this.leafInputs.forEach(function (leaf) {
      var row = element("tr");
      var x = self.leafValues[leaf.slot] !== undefined ? self.leafValues[leaf.slot] : self.program.nodes[leaf.slot].value;
      var h = 1e-6 * Math.max(1, Math.abs(x));
      var shifted = Object.assign({}, self.leafValues);
      shifted[leaf.slot] = x + h;
      var up = core.evaluate(self.program, shifted, self.compiled);
      shifted[leaf.slot] = x - h;
      var down = core.evaluate(self.program, shifted, self.compiled);
      var root = self.program.output;
      var grad = self.result.grads === null ? null : self.result.grads[leaf.slot];
      var numeric = up.errors[root] || down.errors[root] ? null : (up.values[root] - down.values[root]) / (2 * h);
      var ok = grad !== null && numeric !== null && Math.abs(grad - numeric) <= 1e-4 * Math.max(1, Math.abs(grad), Math.abs(numeric));
      if (ok) agree++;
      [self.program.nodes[leaf.slot].leafName, formatNumber(grad, spec), numeric === null ? "undefined here" : formatNumber(numeric, spec), ok ? "\u2713 agree" : "\u2717 differ"].forEach(function (text, i) {
        row.appendChild(element("td", i === 3 ? { class: ok ? "mg-ok" : "mg-bad" } : {}, text));
      });
      table.appendChild(row);
    });
    out.replaceChildren(
      element("p", {}, agree + " of " + this.leafInputs.length + " gradients agree with central differences."),
      table
    );
  };

  Explorer.prototype.state = function () {
    var moment = this.moment();
    var result = this.result;
    var self = this;
    return {
      step: this.current,
      total: this.total,
      nodes: this.program.nodes.map(function (node, slot) {
        return {
          id: slot,
          label: node.label,
          op: node.op,
          value: moment.computed[slot] && result.errors[slot] === null ? result.values[slot] : null,
          grad: slot in moment.grads ? moment.grads[slot] : null,
          error: result.errors[slot],
        };
      }),
    };
  };

  Explorer.prototype.onKey = function (event) {
    var tag = event.target && event.target.tagName;
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") return;
    // a focused button clicks itself with Space
    if (tag === "BUTTON" && event.key === " ") return;
    var keys = {
      ArrowRight: this.current + 1,
      ArrowLeft: this.current - 1,
      Home: 0,
      End: this.total,
    };
    if (event.key in keys) {
      this.pause();
      this.step(keys[event.key]);
    } else if (event.key === " ") this.togglePlay();
    else return;
    event.preventDefault();
  };

  var explorers = [];
  document.querySelectorAll(".mg-explorer").forEach(function (root) {
    var explorer = new Explorer(root);
    explorers.push({
      state: explorer.state.bind(explorer),
      step: explorer.step.bind(explorer),
      setLeaf: explorer.setLeaf.bind(explorer),
    });
    root.addEventListener("keydown", function (event) {
      explorer.onKey(event);
    });
    root.explorer = explorer;
  });
  document.addEventListener("keydown", function (event) {
    // keys typed outside any explorer go to the first one (the page of a saved file)
    var inside = event.target && event.target.closest && event.target.closest(".mg-explorer");
    if (!inside && explorers.length) document.querySelector(".mg-explorer").explorer.onKey(event);
  });
  window.microgradient = window.microgradient || {};
  window.microgradient.explorers = (window.microgradient.explorers || []).concat(explorers);
  window.microgradient.formatNumber = formatNumber;
})();
