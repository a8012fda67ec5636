// The report's charts, drawn by uPlot (inlined above) from the JSON in #alumnos-data.
// Python renders each <figure> (title, note) and says what to draw; this script only draws.
// What each chart drew is written on its figure (data-*), and the number of charts on <body>
// (data-charts): the browser test reads them, and a person can too.
(function () {
  'use strict';
  const COLORS = ['#1a73e8', '#e8710a', '#d01884', '#188038', '#9334e6'];
  const HEIGHT = 240;
  const page = JSON.parse(document.getElementById('alumnos-data').textContent);
  const numbers = new Intl.NumberFormat(document.documentElement.lang || 'en',
                                        {maximumFractionDigits: 2});
  const fmt = (v) => v === null || v === undefined ? '-' : numbers.format(v);
  // Ticks 1, 2, 2.5 or 5 times a power of ten (as uPlot's own), whole ones for counts (no
  // "52.50 VUs"), and steps a clock reads for seconds (15 s, 30 s, 1 min, 5 min).
  const STEPS = [];
  for (let e = -4; e <= 12; e++) {
    for (const m of [1, 2, 2.5, 5]) STEPS.push(+(m * 10 ** e).toPrecision(2));
  }
  const WHOLE = STEPS.filter(Number.isInteger);
  const SECONDS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400];
  // From zero, to a rounded top: a bar or a line is read against zero.
  const fromZero = (u, min, max) => uPlot.rangeNum(0, max > 0 ? max : 1, 0.1, true);

  function recorded(chart, key, format) {
    // uPlot hands its chosen ticks to `values`; keep them, they are what the axis shows.
    return (u, splits) => {
      chart.ticks[key] = splits.slice();
      return splits.map(format);
    };
  }

  function yAxis(spec, chart) {
    return {incrs: spec.whole ? WHOLE : STEPS, values: recorded(chart, 'y', fmt), size: 64};
  }

  function lineSeries(spec) {
    return spec.series.map((s, i) => ({
      label: s.label, stroke: COLORS[i % COLORS.length], width: 1.8,
      value: (u, v) => v === null || v === undefined ? '-' : fmt(v) + s.unit,
    }));
  }

  function timeOptions(spec, chart) {
    return {
      series: [{label: spec.x_legend, value: (u, v) => v === null ? '-' : `${fmt(v)} s`},
               ...lineSeries(spec)],
      scales: {x: {time: false}, y: {range: fromZero}},
      axes: [{incrs: SECONDS, values: recorded(chart, 'x', fmt), label: spec.x_label,
              labelSize: 20},
             yAxis(spec, chart)],
      // uPlot's defaults: drag across to zoom into a span, double-click to see it all again.
      cursor: {drag: {x: true, y: false}},
      hooks: {draw: [(u) => placeBands(u, spec, chart)]},
    };
  }

  function levelOptions(spec, chart) {
    // A sweep: figures against the load each level put on, levels doubling, so a log scale;
    // points at the levels measured, joined.
    const options = timeOptions(spec, chart);
    options.series[0].value = (u, v) => v === null ? '-' : fmt(v);
    options.series.slice(1).forEach((s) => { s.points = {show: true, size: 6}; });
    options.scales.x = {time: false, distr: 3, log: 2};
    options.axes[0] = {values: recorded(chart, 'x', fmt), label: spec.x_label, labelSize: 20};
    options.cursor = {drag: {x: false, y: false}};
    return options;
  }

  function barOptions(spec, chart) {
    const count = spec.labels.length, groups = spec.series.length;
    // Two groups (a comparison) stand side by side around each label; one stands centred.
    const align = (i) => groups === 1 ? 0 : (i === 0 ? -1 : 1);
    const series = spec.series.map((s, i) => ({
      label: s.label, stroke: COLORS[i % COLORS.length], fill: COLORS[i % COLORS.length],
      points: {show: false},
      paths: uPlot.paths.bars({size: [groups === 1 ? 0.6 : 0.4, 90], align: align(i)}),
      value: (u, v) => v === null || v === undefined ? '-' : fmt(v) + spec.unit,
    }));
    return {
      series: [{label: spec.x_legend, value: (u, v) => v === null ? '-' : spec.labels[v]},
               ...series],
      scales: {x: {time: false, range: () => [-0.5, count - 0.5]}, y: {range: fromZero}},
      axes: [{splits: () => spec.labels.map((_, i) => i), grid: {show: false},
              values: recorded(chart, 'x', (i) => spec.labels[i] ?? '')},
             yAxis(spec, chart)],
      cursor: {drag: {x: false, y: false}, points: {show: false}},
    };
  }

  function placeBands(u, spec, chart) {
    // The breaker's ejections as shaded spans over the plot, kept in place on zoom.
    if (!chart.bands) {
      chart.bands = (spec.bands || []).map((band) => {
        const box = document.createElement('div');
        box.className = 'ejection';
        box.title = band.label;
        u.over.appendChild(box);
        return box;
      });
    }
    const width = u.over.clientWidth;
    (spec.bands || []).forEach((band, i) => {
      const end = band.end === null ? u.scales.x.max : band.end;
      const left = Math.max(0, u.valToPos(band.start, 'x'));
      const right = Math.min(width, u.valToPos(end, 'x'));
      Object.assign(chart.bands[i].style, {left: `${left}px`, width: `${Math.max(0, right - left)}px`,
                                           display: right > left ? 'block' : 'none'});
    });
  }

  function record(u, chart) {
    const figure = chart.figure, columns = u.data.slice(1);
    figure.dataset.series = JSON.stringify(u.series.slice(1).map((s) => s.label));
    figure.dataset.length = String(u.data[0].length);
    figure.dataset.points = JSON.stringify(columns.map((c) => c.filter((v) => v !== null).length));
    figure.dataset.peaks = JSON.stringify(columns.map((c) => Math.max(...c.filter((v) => v !== null))));
    figure.dataset.drawn = String(chart.drawn.size);
    figure.dataset.xticks = JSON.stringify(chart.ticks.x);
    figure.dataset.yticks = JSON.stringify(chart.ticks.y);
  }

  function draw(spec, figure) {
    const chart = {figure, ticks: {}, drawn: new Set(), bands: null};
    const options = spec.kind === 'bars' ? barOptions(spec, chart)
      : spec.kind === 'levels' ? levelOptions(spec, chart) : timeOptions(spec, chart);
    const hooks = options.hooks || {};
    hooks.drawSeries = [(u, i) => chart.drawn.add(i)];
    hooks.draw = [...(hooks.draw || []), (u) => record(u, chart)];
    const target = figure.querySelector('.plot');
    const width = () => Math.max(280, target.clientWidth);
    const x = spec.kind === 'bars' ? spec.labels.map((_, i) => i) : spec.x;
    const u = new uPlot({...options, hooks, width: width(), height: HEIGHT},
                        [x, ...spec.series.map((s) => s.values)], target);
    window.addEventListener('resize', () => u.setSize({width: width(), height: HEIGHT}));
    return u;
  }

  let drawn = 0;
  (page.charts || []).forEach((spec, i) => {
    const figure = document.querySelector(`figure[data-chart="${i}"]`);
    try {
      draw(spec, figure);
      drawn += 1;
    } catch (error) {
      // One chart that cannot be drawn leaves the others, and says why.
      document.body.dataset.errors = (document.body.dataset.errors || '') + error + ';';
    }
  });
  document.body.dataset.charts = String(drawn);
})();
