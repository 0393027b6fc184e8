// Runs in the page bench/dashboard-picture.ts makes: lays the dashboard's panels out on Grafana's
// 24-column grid and draws them, uPlot for time series, the last value for stat panels. Every
// value goes in with textContent. Called with uPlot and the data (render-page.ts PageData).
'use strict';

function drawDashboard(uPlot, data) {
  const WIDTH = 1600;
  const COL = WIDTH / 24;
  const CELL = 30;
  const GAP = 8;
  const COLORS = ['#73BF69', '#F2CC0C', '#5794F2', '#FF9830', '#F2495C', '#B877D9', '#8AB8FF', '#FADE2A', '#FF780A', '#CA95E5'];
  const scaled = (v, base, units, digits = 1) => {
    let i = 0;
    let x = Math.abs(v);
    while (x >= base && i < units.length - 1) {
      x /= base;
      i++;
    }
    return `${(Math.sign(v) * x).toFixed(x >= 100 || i === 0 ? 0 : digits)} ${units[i]}`.trim();
  };
  const format = (v, unit) => {
    if (v === null || !Number.isFinite(v)) return 'No data';
    switch (unit) {
      case 'bytes':
        return scaled(v, 1024, ['B', 'KiB', 'MiB', 'GiB', 'TiB']);
      case 'Bps':
        return scaled(v, 1024, ['B/s', 'KiB/s', 'MiB/s', 'GiB/s']);
      case 'reqps':
        return `${v < 10 ? v.toFixed(2) : v.toFixed(0)} req/s`;
      case 'ops':
        return `${v < 10 ? v.toFixed(2) : v.toFixed(0)} ops/s`;
      case 'percentunit':
        return `${(v * 100).toFixed(1)}%`;
      case 'd':
        return `${Math.abs(v) >= 10 ? v.toFixed(0) : v.toFixed(1)} day${Math.abs(v) >= 1.05 ? 's' : ''}`;
      case 's':
        return v < 1 ? `${(v * 1000).toFixed(v < 0.01 ? 2 : 1)} ms` : `${v.toFixed(2)} s`;
      default:
        return Math.abs(v) >= 1000 ? scaled(v, 1000, ['', 'K', 'M', 'G']) : String(Math.round(v * 100) / 100);
    }
  };
  const thresholdColor = (v, d) => {
    let color = '#73BF69';
    for (const s of d.thresholds?.steps ?? []) if (s.value === null || v >= s.value) color = s.color;
    const named = { green: '#73BF69', red: '#F2495C', orange: '#FF9830', yellow: '#FADE2A' };
    return named[color] ?? color;
  };
  const root = document.getElementById('grid');
  let bottom = 0;
  for (const p of data.panels) {
    const el = document.createElement('div');
    const { x, y, w, h } = p.gridPos;
    el.className = p.type === 'row' ? 'row' : 'panel';
    el.style.left = `${x * COL}px`;
    el.style.top = `${y * (CELL + GAP)}px`;
    el.style.width = `${w * COL - GAP}px`;
    el.style.height = `${h * CELL + (h - 1) * GAP}px`;
    bottom = Math.max(bottom, (y + h) * (CELL + GAP));
    const title = document.createElement('div');
    title.className = 'title';
    title.textContent = p.title;
    el.appendChild(title);
    root.appendChild(el);
    if (p.type === 'row') continue;
    const body = document.createElement('div');
    body.className = 'body';
    el.appendChild(body);
    if (p.series.length === 0) {
      body.classList.add('nodata');
      body.textContent = 'No data';
      continue;
    }
    if (p.type === 'stat') {
      const values = document.createElement('div');
      values.className = 'values';
      body.appendChild(values);
      for (const s of p.series) {
        const last = [...s.values].reverse().find((v) => v !== null) ?? null;
        const mapped = last === null ? undefined : p.defaults.mappings?.[0]?.options[String(last)];
        const v = document.createElement('div');
        v.className = 'stat';
        v.textContent = mapped?.text ?? format(last, s.unit);
        const color = last === null ? '#ccc' : thresholdColor(last, p.defaults);
        v.style.color = mapped?.color ? thresholdColor(0, { thresholds: { steps: [{ color: mapped.color, value: null }] } }) : color;
        if (p.series.length > 1) v.title = s.name;
        values.appendChild(v);
        const spark = document.createElement('div');
        spark.className = 'spark';
        body.appendChild(spark);
        new uPlot(
          {
            width: el.clientWidth - 16,
            height: 40,
            cursor: { show: false },
            legend: { show: false },
            axes: [{ show: false }, { show: false }],
            scales: { x: { time: true } },
            series: [{}, { stroke: v.style.color, fill: `${color}33`, width: 1 }],
          },
          [data.xs, s.values],
          spark,
        );
      }
      continue;
    }
    const series = [
      {},
      ...p.series.map((s, i) => ({
        label: s.name,
        stroke: COLORS[i % COLORS.length],
        fill: `${COLORS[i % COLORS.length]}1a`,
        width: 1,
        scale: s.right ? 'right' : 'y',
        spanGaps: false,
        points: { show: false },
      })),
    ];
    const leftUnit = p.series.find((s) => !s.right)?.unit ?? 'none';
    const rightUnit = p.series.find((s) => s.right)?.unit;
    const axisStyle = { stroke: '#ccccdc', grid: { stroke: '#ffffff14' }, ticks: { stroke: '#ffffff14' }, font: '11px sans-serif' };
    const axes = [
      { ...axisStyle, values: (_u, ticks) => ticks.map((t) => new Date(t * 1000).toISOString().slice(11, 19)) },
      { ...axisStyle, scale: 'y', size: 84, values: (_u, ticks) => ticks.map((t) => format(t, leftUnit)) },
    ];
    if (rightUnit)
      axes.push({
        ...axisStyle,
        scale: 'right',
        side: 1,
        size: 76,
        grid: { show: false },
        values: (_u, ticks) => ticks.map((t) => format(t, rightUnit)),
      });
    const legendRows = Math.ceil(p.series.length / Math.max(1, Math.floor((el.clientWidth - 16) / 220)));
    new uPlot(
      {
        width: el.clientWidth - 16,
        height: el.clientHeight - 34 - Math.min(3, legendRows) * 18,
        cursor: { show: false },
        legend: { live: false },
        scales: {
          x: { time: true },
          y: { range: (_u, min, max) => [Math.min(0, min), max > min ? max : min + 1] },
          right: { range: (_u, min, max) => [Math.min(0, min), max > min ? max : min + 1] },
        },
        axes,
        series,
      },
      [data.xs, ...p.series.map((s) => s.values)],
      body,
    );
  }
  root.style.height = `${bottom}px`;
  document.getElementById('title').textContent = data.title;
  document.getElementById('subtitle').textContent = data.subtitle;
}

