/* microgradient explorer: the evaluator of a traced program.
 *
 * Every built-in operation of microgradient's engine, with the same forward
 * value, local derivatives, kink conventions and domain rules; the test suite
 * checks it against the Python engine on random graphs. No DOM here, so it
 * also runs in an embedded JavaScript engine.
 *
 * A program is {nodes: [{op, args, constant, coefficients, label, value}],
 * output}: nodes in topological order (a node's args are earlier slots), a
 * leaf has op "" and its value; custom operations come with
 * {custom: {name: {arity, forward, derivatives}}} (JavaScript expression
 * templates over operands a, b, c, ... and the result out).
 */
var microgradientEvaluator = (function () {
  "use strict";

  var MINUS = "\u2212";

  /* Python's float ** float, where JavaScript differs: 1 ** nan, (-1) ** inf. */
  function power(x, y) {
    if (x === 1 || y === 0) return 1;
    if (x === -1 && !isFinite(y) && !isNaN(y)) return 1;
    return Math.pow(x, y);
  }

  /* Shewchuk's exactly rounded sum, as Python's math.fsum. */
  function fsum(terms) {
    var partials = [];
    var special = 0;
    for (var t = 0; t < terms.length; t++) {
      var x = terms[t];
      if (!isFinite(x)) {
        special += x;
        continue;
      }
      var kept = 0;
      for (var p = 0; p < partials.length; p++) {
        var y = partials[p];
        if (Math.abs(x) < Math.abs(y)) {
          var swap = x;
          x = y;
          y = swap;
        }
        var hi = x + y;
        var lo = y - (hi - x);
        if (lo !== 0) partials[kept++] = lo;
        x = hi;
      }
      partials.length = kept;
      partials.push(x);
    }
    if (special !== 0 || isNaN(special)) return special;
    var n = partials.length;
    if (n === 0) return 0;
    var sum = partials[--n];
    var low = 0;
    while (n > 0) {
      var before = sum;
      var next = partials[--n];
      sum = before + next;
      low = next - (sum - before);
      if (low !== 0) break;
    }
    // half-way cases: round as if the remaining partials were added exactly
    if (n > 0 && ((low < 0 && partials[n - 1] < 0) || (low > 0 && partials[n - 1] > 0))) {
      var doubled = low * 2;
      var candidate = sum + doubled;
      if (doubled === candidate - sum) sum = candidate;
    }
    return sum;
  }

  var SCALE_DOWN = Math.pow(2, -64);
  var SCALE_UP = Math.pow(2, 64);

  /* The engine's sum: correctly rounded, too large is inf, inf - inf is nan. */
  function exactSum(terms) {
    var sum = fsum(terms);
    if (!isFinite(sum) && terms.every(isFinite)) {
      // partial sums near the largest float overflow even when the exact sum is finite
      sum = fsum(terms.map(function (t) {
        return t * SCALE_DOWN;
      })) * SCALE_UP;
    }
    return sum;
  }

  function show(x) {
    if (isNaN(x)) return "nan";
    if (x === Infinity) return "\u221e";
    if (x === -Infinity) return MINUS + "\u221e";
    return String(Number(x.toPrecision(15))).replace("-", MINUS);
  }

  /* Python's format(x, spec) for the specs drawings use ([.precision][g|f|e|%]),
   * after microgradient's format_number: 15 significant digits, no -0, a real minus. */
  function formatNumber(x, spec) {
    if (x === null || x === undefined) return "";
    if (isNaN(x)) return "nan";
    if (x === Infinity) return "\u221e";
    if (x === -Infinity) return MINUS + "\u221e";
    x = roundTo15Digits(x);
    var match = /^\.(\d+)([gfe%]?)$/.exec(spec) || [null, "4", "g"];
    var text = formatFloat(x, match[2] || "g", Number(match[1]));
    var mantissa = text.toLowerCase().split("e")[0];
    if (mantissa.indexOf("-") >= 0 && !/[1-9]/.test(mantissa)) text = text.replace("-", "");
    return text.replace(/-/g, MINUS);
  }

  function roundTo15Digits(x) {
    return Number(formatFloat(x, "g", 15));
  }

  /* A digit string one place longer that ends in 5 and is x exactly: a tie to round. */
  function perhapsTie(longer, x) {
    var mantissa = longer.split("e")[0];
    return mantissa.charAt(mantissa.length - 1) === "5" && Number(longer) === x;
  }

  /* Python's format by JavaScript's own (fast) rounding, which differs only at a tie:
   * JavaScript rounds it away from zero, Python to even. null where a tie is possible. */
  function nativeFormat(x, kind, precision) {
    if (kind === "f") {
      if (Math.abs(x) >= 1e21 || perhapsTie(x.toFixed(precision + 1), x)) return null;
      return x.toFixed(precision);
    }
    var significant = kind === "e" ? precision + 1 : Math.max(precision, 1);
    if (significant > 100 || perhapsTie(x.toExponential(significant), x)) return null;
    var parts = x.toExponential(significant - 1).split("e");
    var power = Number(parts[1]);
    var text;
    if (kind === "g" && power >= -4 && power < significant) text = stripZeros(x.toFixed(significant - 1 - power));
    else {
      text = kind === "g" ? stripZeros(parts[0]) : parts[0];
      text += "e" + (power < 0 ? "-" : "+") + String(Math.abs(power)).padStart(2, "0");
    }
    return Object.is(x, -0) ? "-" + text : text;
  }

  var TWO = BigInt(2);
  var TEN = BigInt(10);

  /* round(|x| * 10**places) as a decimal string, ties to even, computed exactly as Python does. */
  function scaledDigits(x, places) {
    var bits = new DataView(new ArrayBuffer(8));
    bits.setFloat64(0, Math.abs(x));
    var high = bits.getUint32(0);
    var biased = high >>> 20;
    var mantissa = (BigInt(high & 0xfffff) << BigInt(32)) + BigInt(bits.getUint32(4));
    var exponent = biased === 0 ? -1074 : biased - 1075;
    if (biased !== 0) mantissa += BigInt(1) << BigInt(52);
    var numerator = mantissa * TWO ** BigInt(Math.max(exponent, 0)) * TEN ** BigInt(Math.max(places, 0));
    var denominator = TWO ** BigInt(Math.max(-exponent, 0)) * TEN ** BigInt(Math.max(-places, 0));
    var quotient = numerator / denominator;
    var twice = (numerator % denominator) * TWO;
    if (twice > denominator || (twice === denominator && quotient % TWO === BigInt(1))) quotient += BigInt(1);
    return quotient.toString();
  }

  function withPoint(digits, places) {
    if (places <= 0) return digits;
    digits = digits.padStart(places + 1, "0");
    return digits.slice(0, -places) + "." + digits.slice(-places);
  }

  /* Python's format(x, ".{precision}{kind}") for kind g, f, e or %, exactly rounded. */
  function formatFloat(x, kind, precision) {
    if (kind === "%") return formatFloat(x * 100, "f", precision) + "%"; // as Python: a float product
    var fast = nativeFormat(x, kind, precision);
    if (fast !== null) return fast;
    var sign = x < 0 || Object.is(x, -0) ? "-" : "";
    if (kind === "f") return sign + withPoint(scaledDigits(x, precision), precision);

    var significant = kind === "e" ? precision + 1 : Math.max(precision, 1);
    var power = x === 0 ? 0 : Math.floor(Math.log10(Math.abs(x)));
    var digits = scaledDigits(x, significant - 1 - power);
    if (x !== 0 && digits.length < significant) {
      power -= 1;
      digits = scaledDigits(x, significant - 1 - power);
    }
    if (digits.length > significant) {
      power += 1;
      digits = digits.slice(0, significant);
    }
    var fixed = kind === "g" && power >= -4 && power < significant;
    var text;
    if (fixed) text = withPoint(scaledDigits(x, significant - 1 - power), significant - 1 - power);
    else text = withPoint(digits, significant - 1);
    if (kind === "g") text = stripZeros(text);
    if (!fixed) text += "e" + (power < 0 ? "-" : "+") + String(Math.abs(power)).padStart(2, "0");
    return sign + text;
  }

  function stripZeros(text) {
    return text.indexOf(".") < 0 ? text : text.replace(/0+$/, "").replace(/\.$/, "");
  }

  /* A failed operation: the reason, in words, for the node it happened at. */
  function DomainFailure(message) {
    this.message = message;
  }

  function fail(message) {
    throw new DomainFailure(message);
  }

  function periodic(op, x) {
    if (x === Infinity || x === -Infinity)
      fail(op + ": " + show(x) + " is infinite; " + op + " needs a finite argument (an infinite angle has no position on the circle)");
  }

  /* a * b where a zero times an infinity is zero, as in the engine's derivatives */
  function times(a, b) {
    if ((a === 0 && !isFinite(b) && !isNaN(b)) || (b === 0 && !isFinite(a) && !isNaN(a))) return 0;
    return a * b;
  }

  function sigmoid(x) {
    if (x >= 0) return 1 / (1 + Math.exp(-x));
    var e = Math.exp(x);
    return e / (1 + e);
  }

  /* Each operation: forward(v, c, k) and local(v, out, c, k) -> one derivative per
   * operand, where v are the operand values, c the constant and k the coefficients;
   * formula(names, c) and derivative(names, c, j) are the words of the side panel. */
  var OPS = {
    "+": {
      forward: function (v, c) {
        return v.length === 2 ? v[0] + v[1] : v[0] + c;
      },
      local: function (v) {
        return v.length === 2 ? [1, 1] : [1];
      },
      formula: function (n, c) {
        return n.length === 2 ? n[0] + " + " + n[1] : n[0] + " + " + show(c);
      },
      derivative: function () {
        return "1";
      },
    },
    "-": {
      forward: function (v, c) {
        return v.length === 2 ? v[0] - v[1] : v[0] - c;
      },
      local: function (v) {
        return v.length === 2 ? [1, -1] : [1];
      },
      formula: function (n, c) {
        return n.length === 2 ? n[0] + " " + MINUS + " " + n[1] : n[0] + " " + MINUS + " " + show(c);
      },
      derivative: function (n, c, j) {
        return j === 0 ? "1" : MINUS + "1";
      },
    },
    "r-": {
      forward: function (v, c) {
        return c - v[0];
      },
      local: function () {
        return [-1];
      },
      formula: function (n, c) {
        return show(c) + " " + MINUS + " " + n[0];
      },
      derivative: function () {
        return MINUS + "1";
      },
    },
    "*": {
      forward: function (v, c) {
        return v.length === 2 ? v[0] * v[1] : v[0] * c;
      },
      local: function (v, out, c) {
        return v.length === 2 ? [v[1], v[0]] : [c];
      },
      formula: function (n, c) {
        return n.length === 2 ? n[0] + "\u00b7" + n[1] : n[0] + "\u00b7" + show(c);
      },
      derivative: function (n, c, j) {
        return n.length === 2 ? n[1 - j] : show(c);
      },
    },
    "/": {
      forward: function (v, c) {
        var divisor = v.length === 2 ? v[1] : c;
        if (divisor === 0) fail("division: " + show(v[0]) + " / 0: the divisor is zero");
        return v[0] / divisor;
      },
      local: function (v, out, c) {
        return v.length === 2 ? [1 / v[1], -out / v[1]] : [1 / c];
      },
      formula: function (n, c) {
        return n.length === 2 ? n[0] + " / " + n[1] : n[0] + " / " + show(c);
      },
      derivative: function (n, c, j) {
        if (n.length === 1) return "1 / " + show(c);
        return j === 0 ? "1 / " + n[1] : MINUS + n[0] + " / " + n[1] + "\u00b2";
      },
    },
    "r/": {
      forward: function (v, c) {
        if (v[0] === 0) fail("division: " + show(c) + " / 0: the divisor is zero");
        return c / v[0];
      },
      local: function (v, out) {
        return [-out / v[0]];
      },
      formula: function (n, c) {
        return show(c) + " / " + n[0];
      },
      derivative: function (n, c) {
        return MINUS + show(c) + " / " + n[0] + "\u00b2";
      },
    },
    neg: {
      forward: function (v) {
        return -v[0];
      },
      local: function () {
        return [-1];
      },
      formula: function (n) {
        return MINUS + n[0];
      },
      derivative: function () {
        return MINUS + "1";
      },
    },
    "**": {
      forward: function (v, c) {
        var x = v[0];
        var y = v.length === 2 ? v[1] : c;
        var where = show(x) + " ** " + show(y);
        if (v.length === 2 && x < 0) fail("power: " + where + ": a negative base needs a constant exponent");
        if (x === 0 && (v.length === 2 ? y <= 0 : y < 0))
          fail("power: " + where + ": zero to a " + (v.length === 2 ? "non-positive" : "negative") + " power");
        if (x < 0 && !Number.isInteger(y)) fail("power: " + where + ": a negative base needs an integer exponent");
        return power(x, y);
      },
      local: function (v, out, c) {
        var x = v[0];
        if (v.length === 1) return [c === 0 ? 0 : c * power(x, c - 1)];
        var y = v[1];
        var slope = times(y, power(x, y - 1));
        // x**y * log(x) -> 0 as x -> 0+: the exponent's slope is 0 along x = 0
        return [slope, x === 0 ? 0 : out * Math.log(x)];
      },
      formula: function (n, c) {
        return n.length === 2 ? n[0] + "^" + n[1] : n[0] + "^" + show(c);
      },
      derivative: function (n, c, j) {
        if (n.length === 1) return show(c) + "\u00b7" + n[0] + "^" + show(c - 1);
        return j === 0 ? n[1] + "\u00b7" + n[0] + "^(" + n[1] + " " + MINUS + " 1)" : n[0] + "^" + n[1] + "\u00b7log " + n[0];
      },
    },
    "r**": {
      forward: function (v, c) {
        var where = show(c) + " ** " + show(v[0]);
        if (c < 0) fail("power: " + where + ": a negative base needs a constant exponent");
        if (c === 0) {
          if (v[0] <= 0) fail("power: " + where + ": zero to a non-positive power");
          return 0;
        }
        return power(c, v[0]);
      },
      local: function (v, out, c) {
        return c === 0 ? [0] : [out * Math.log(c)];
      },
      formula: function (n, c) {
        return show(c) + "^" + n[0];
      },
      derivative: function (n, c) {
        return show(c) + "^" + n[0] + "\u00b7log " + show(c);
      },
    },
    exp: {
      forward: function (v) {
        return Math.exp(v[0]);
      },
      local: function (v, out) {
        return [out];
      },
      formula: function (n) {
        return "exp " + n[0];
      },
      derivative: function (n) {
        return "exp " + n[0];
      },
    },
    log: {
      forward: function (v) {
        if (v[0] <= 0) fail("log: " + show(v[0]) + " is not > 0; log needs a positive argument");
        return Math.log(v[0]);
      },
      local: function (v) {
        return [1 / v[0]];
      },
      formula: function (n) {
        return "log " + n[0];
      },
      derivative: function (n) {
        return "1 / " + n[0];
      },
    },
    sqrt: {
      forward: function (v) {
        if (v[0] < 0) fail("sqrt: " + show(v[0]) + " is negative; sqrt needs an argument \u2265 0");
        return Math.sqrt(v[0]);
      },
      local: function (v, out) {
        return [v[0] === 0 ? Infinity : 0.5 / out];
      },
      formula: function (n) {
        return "\u221a" + n[0];
      },
      derivative: function (n) {
        return "1 / (2\u221a" + n[0] + ")";
      },
    },
    tanh: {
      forward: function (v) {
        return Math.tanh(v[0]);
      },
      local: function (v, out) {
        return [1 - out * out];
      },
      formula: function (n) {
        return "tanh " + n[0];
      },
      derivative: function (n) {
        return "1 " + MINUS + " tanh\u00b2 " + n[0];
      },
    },
    sigmoid: {
      forward: function (v) {
        return sigmoid(v[0]);
      },
      local: function (v, out) {
        return [out * (1 - out)];
      },
      formula: function (n) {
        return "\u03c3(" + n[0] + ")";
      },
      derivative: function (n) {
        return "\u03c3(" + n[0] + ")\u00b7(1 " + MINUS + " \u03c3(" + n[0] + "))";
      },
    },
    relu: {
      forward: function (v) {
        return v[0] > 0 ? v[0] : 0;
      },
      local: function (v) {
        return [v[0] > 0 ? 1 : 0];
      },
      formula: function (n) {
        return "relu " + n[0];
      },
      derivative: function (n) {
        return "1 if " + n[0] + " > 0, else 0";
      },
    },
    sin: {
      forward: function (v) {
        periodic("sin", v[0]);
        return Math.sin(v[0]);
      },
      local: function (v) {
        return [Math.cos(v[0])];
      },
      formula: function (n) {
        return "sin " + n[0];
      },
      derivative: function (n) {
        return "cos " + n[0];
      },
    },
    cos: {
      forward: function (v) {
        periodic("cos", v[0]);
        return Math.cos(v[0]);
      },
      local: function (v) {
        return [-Math.sin(v[0])];
      },
      formula: function (n) {
        return "cos " + n[0];
      },
      derivative: function (n) {
        return MINUS + "sin " + n[0];
      },
    },
    tan: {
      forward: function (v) {
        periodic("tan", v[0]);
        return Math.tan(v[0]);
      },
      local: function (v, out) {
        return [1 + out * out];
      },
      formula: function (n) {
        return "tan " + n[0];
      },
      derivative: function (n) {
        return "1 + tan\u00b2 " + n[0];
      },
    },
    atan: {
      forward: function (v) {
        return Math.atan(v[0]);
      },
      local: function (v) {
        return [1 / (1 + v[0] * v[0])];
      },
      formula: function (n) {
        return "atan " + n[0];
      },
      derivative: function (n) {
        return "1 / (1 + " + n[0] + "\u00b2)";
      },
    },
    softplus: {
      forward: function (v) {
        var x = v[0];
        return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
      },
      local: function (v) {
        return [sigmoid(v[0])];
      },
      formula: function (n) {
        return "softplus " + n[0];
      },
      derivative: function (n) {
        return "\u03c3(" + n[0] + ")";
      },
    },
    abs: {
      forward: function (v) {
        return Math.abs(v[0]);
      },
      local: function (v) {
        return [v[0] > 0 ? 1 : v[0] < 0 ? -1 : 0];
      },
      formula: function (n) {
        return "|" + n[0] + "|";
      },
      derivative: function (n) {
        return "sign " + n[0] + " (0 at 0)";
      },
    },
    max: extremum("max", 1),
    min: extremum("min", -1),
    sum: {
      forward: function (v, c) {
        return exactSum(c === null ? v : v.concat([c]));
      },
      local: function (v) {
        return v.map(function () {
          return 1;
        });
      },
      formula: function (n, c) {
        return n.join(" + ") + (c === null ? "" : " + " + show(c));
      },
      derivative: function () {
        return "1";
      },
    },
    dot: {
      forward: function (v, c, k) {
        var pairs = (v.length - k.length) / 2;
        var terms = [];
        for (var i = 0; i < pairs; i++) terms.push(v[i] * v[pairs + i]);
        for (var j = 0; j < k.length; j++) terms.push(k[j] * v[2 * pairs + j]);
        if (c !== null) terms.push(c);
        return exactSum(terms);
      },
      local: function (v, out, c, k) {
        var pairs = (v.length - k.length) / 2;
        var locals = [];
        for (var i = 0; i < pairs; i++) locals.push(v[pairs + i]);
        for (var i2 = 0; i2 < pairs; i2++) locals.push(v[i2]);
        return locals.concat(k);
      },
      formula: function (n, c, k) {
        var pairs = (n.length - k.length) / 2;
        var terms = [];
        for (var i = 0; i < pairs; i++) terms.push(n[i] + "\u00b7" + n[pairs + i]);
        for (var j = 0; j < k.length; j++) terms.push(show(k[j]) + "\u00b7" + n[2 * pairs + j]);
        if (c !== null) terms.push(show(c));
        return terms.join(" + ");
      },
      derivative: function (n, c, j, k) {
        var pairs = (n.length - k.length) / 2;
        if (j < pairs) return n[pairs + j];
        if (j < 2 * pairs) return n[j - pairs];
        return show(k[j - 2 * pairs]);
      },
    },
  };

  /* max (sign 1) or min (sign -1) of two operands; a tie splits the gradient 0.5 / 0.5. */
  function extremum(name, sign) {
    function wins(a, b) {
      return sign > 0 ? a > b : a < b;
    }
    // a tie, or a nan that no comparison can order, splits the gradient
    function pick(a, b) {
      return wins(a, b) ? a : wins(b, a) ? b : a === b ? a : NaN;
    }
    function slopes(a, b) {
      return wins(a, b) ? [1, 0] : wins(b, a) ? [0, 1] : [0.5, 0.5];
    }
    return {
      forward: function (v, c) {
        return pick(v[0], v.length === 2 ? v[1] : c);
      },
      local: function (v, out, c) {
        var both = slopes(v[0], v.length === 2 ? v[1] : c);
        return v.length === 2 ? both : both.slice(0, 1);
      },
      formula: function (n, c) {
        return name + "(" + n[0] + ", " + (n.length === 2 ? n[1] : show(c)) + ")";
      },
      derivative: function (n, c, j) {
        var other = n.length === 2 ? n[1 - j] : show(c);
        return "1 if " + n[j] + (sign > 0 ? " > " : " < ") + other + ", \u00bd at a tie, else 0";
      },
    };
  }

  var LETTERS = "abcdefghijklmnopqrstuvwxyz";

  /* A custom operation from its JavaScript templates, or the reason it has none. */
  function customOperation(name, spec) {
    if (!spec || typeof spec.forward !== "string" || !Array.isArray(spec.derivatives))
      return { unavailable: "the operation " + JSON.stringify(name) + " has no JavaScript definition" };
    var operands = LETTERS.slice(0, spec.arity).split("");
    var forward, derivatives;
    try {
      forward = Function.apply(null, operands.concat(['"use strict"; return (' + spec.forward + ");"]));
      derivatives = spec.derivatives.map(function (template) {
        return Function.apply(null, operands.concat(["out", '"use strict"; return (' + template + ");"]));
      });
    } catch (error) {
      return { unavailable: "the JavaScript of " + JSON.stringify(name) + " does not compile: " + error.message };
    }
    return {
      forward: function (v, c) {
        var operandsGiven = c === null ? v : v.concat([c]);
        var out = forward.apply(null, operandsGiven);
        if (typeof out !== "number" || isNaN(out))
          fail(name + "(" + operandsGiven.map(show).join(", ") + ") is outside the operation's domain");
        return out;
      },
      local: function (v, out, c) {
        var operandsGiven = (c === null ? v : v.concat([c])).concat([out]);
        return derivatives.slice(0, v.length).map(function (d) {
          return d.apply(null, operandsGiven);
        });
      },
      formula: function (n, c) {
        return spec.symbol + "(" + (c === null ? n : n.concat([show(c)])).join(", ") + ")";
      },
      derivative: function (n, c, j) {
        return spec.derivatives[j];
      },
    };
  }

  /* The operations a program uses, or the reason the page cannot evaluate it. */
  function compile(program) {
    var ops = {};
    var unavailable = null;
    var custom = program.custom || {};
    program.nodes.forEach(function (node) {
      if (node.op === "" || ops[node.op]) return;
      if (Object.prototype.hasOwnProperty.call(OPS, node.op)) ops[node.op] = OPS[node.op];
      else {
        var op = customOperation(node.op, custom[node.op]);
        if (op.unavailable) unavailable = unavailable || op.unavailable;
        else ops[node.op] = op;
      }
    });
    return { ops: ops, unavailable: unavailable };
  }

  function consumersOf(program) {
    var consumers = program.nodes.map(function () {
      return [];
    });
    program.nodes.forEach(function (node, slot) {
      node.args.forEach(function (arg, j) {
        consumers[arg].push([slot, j]);
      });
    });
    return consumers;
  }

  /* Forward and backward pass at the leaves' values (slot -> number; missing leaves keep theirs).
   * Returns values, errors (words, per node; a node downstream of a failure names it),
   * locals and contributions per node and operand, and grads per node, as the engine's
   * backward(): a node whose gradient is 0 passes nothing back (so 0 * inf is never formed). */
  function evaluate(program, leaves, compiled) {
    compiled = compiled || compile(program);
    var nodes = program.nodes;
    var n = nodes.length;
    var values = new Array(n);
    var errors = new Array(n);
    var locals = new Array(n);
    var failed = null;
    for (var slot = 0; slot < n; slot++) {
      var node = nodes[slot];
      errors[slot] = null;
      locals[slot] = null;
      if (node.op === "") {
        values[slot] = leaves && leaves[slot] !== undefined ? leaves[slot] : node.value;
        continue;
      }
      var blocked = null;
      for (var a = 0; a < node.args.length; a++) {
        if (errors[node.args[a]] !== null) blocked = blocked === null ? node.args[a] : blocked;
      }
      if (blocked !== null) {
        values[slot] = null;
        errors[slot] = "not computed: an operand failed (node " + blocked + ")";
        continue;
      }
      var v = node.args.map(function (arg) {
        return values[arg];
      });
      var op = compiled.ops[node.op];
      if (!op) {
        values[slot] = node.value;
        locals[slot] = node.locals;
        continue;
      }
      try {
        values[slot] = op.forward(v, node.constant, node.coefficients);
        locals[slot] = op.local(v, values[slot], node.constant, node.coefficients);
      } catch (error) {
        if (!(error instanceof DomainFailure)) throw error;
        values[slot] = null;
        errors[slot] = error.message;
        if (failed === null) failed = slot;
      }
    }
    var grads = new Array(n).fill(0);
    var contributions = new Array(n);
    var root = program.output;
    if (errors[root] === null) {
      grads[root] = 1;
      for (var s = n - 1; s >= 0; s--) {
        var upstream = grads[s];
        var args = nodes[s].args;
        contributions[s] = new Array(args.length).fill(0);
        if (upstream === 0 || locals[s] === null) continue;
        var infinite = upstream === Infinity || upstream === -Infinity;
        for (var j = 0; j < args.length; j++) {
          // a zero slope stops an infinite gradient (0 * inf = 0), as in the engine
          if (infinite && locals[s][j] === 0) continue;
          var term = locals[s][j] * upstream;
          contributions[s][j] = term;
          grads[args[j]] += term;
        }
      }
    } else {
      grads = null;
      contributions = null;
    }
    return {
      values: values,
      errors: errors,
      locals: locals,
      grads: grads,
      contributions: contributions,
      failed: failed,
    };
  }

  return {
    OPS: OPS,
    compile: compile,
    consumersOf: consumersOf,
    evaluate: evaluate,
    formatNumber: formatNumber,
    fsum: fsum,
    show: show,
  };
})();
