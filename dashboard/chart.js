// The throughput chart as inline SVG (no library, no inline style: the classes are in style.css): jobs finished
// per minute, stacked by final status, and the queue depth as a line where the event log knows it.
const W = 720;
const H = 180;
const PAD = { left: 34, right: 8, top: 8, bottom: 20 };
const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attributes = {}, text) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

/** buckets: jobThroughput's minutes, oldest first. */
export function throughputChart(buckets) {
  const finished = buckets.map((b) => b.completed + b.failed + b.cancelled);
  const top = Math.max(1, ...finished, ...buckets.map((b) => b.queueDepth ?? 0));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const slot = plotW / Math.max(1, buckets.length);
  const y = (value) => PAD.top + plotH - (value / top) * plotH;
  const total = finished.reduce((a, b) => a + b, 0);
  const chart = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-labelledby': 'chart-title' });
  chart.append(svg('title', { id: 'chart-title' }, `Jobs finished per minute over the last ${buckets.length} minutes: ${total} in all`));
  chart.append(svg('line', { x1: PAD.left, x2: W - PAD.right, y1: y(0), y2: y(0), class: 'axis' }));
  chart.append(svg('text', { x: 2, y: PAD.top + 8 }, String(top)), svg('text', { x: 2, y: y(0) }, '0'));
  buckets.forEach((bucket, index) => {
    let base = 0;
    for (const status of ['completed', 'failed', 'cancelled']) {
      const value = bucket[status];
      if (value <= 0) continue;
      const rect = svg('rect', {
        x: PAD.left + index * slot + 1,
        width: Math.max(1, slot - 2),
        y: y(base + value),
        height: y(base) - y(base + value),
        class: status,
      });
      rect.append(svg('title', {}, `${new Date(bucket.start).toLocaleTimeString()}: ${value} ${status}`));
      chart.append(rect);
      base += value;
    }
  });
  // The depth line breaks where the log does not reach back (queueDepth null): a gap, not a guess.
  let path = '';
  buckets.forEach((bucket, index) => {
    if (bucket.queueDepth === null) return;
    const point = `${(PAD.left + (index + 0.5) * slot).toFixed(1)},${y(bucket.queueDepth).toFixed(1)}`;
    path += path && buckets[index - 1]?.queueDepth !== null && index > 0 ? ` L${point}` : ` M${point}`;
  });
  if (path) chart.append(svg('path', { d: path.trim(), class: 'depth' }));
  // A dot at each known minute too: a run of one minute (the log's first, or the only one) has no line to draw.
  buckets.forEach((bucket, index) => {
    if (bucket.queueDepth === null) return;
    const dot = svg('circle', { cx: PAD.left + (index + 0.5) * slot, cy: y(bucket.queueDepth), r: 2.5, class: 'depth-dot' });
    dot.append(svg('title', {}, `${new Date(bucket.start).toLocaleTimeString()}: ${bucket.queueDepth} queued`));
    chart.append(dot);
  });
  if (buckets.length > 0) {
    chart.append(
      svg('text', { x: PAD.left, y: H - 4 }, new Date(buckets[0].start).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })),
    );
    chart.append(svg('text', { x: W - PAD.right - 30, y: H - 4 }, 'now'));
  }
  const legend = document.createElement('ul');
  legend.className = 'legend';
  for (const [name, label] of [
    ['completed', 'completed'],
    ['failed', 'failed'],
    ['cancelled', 'cancelled'],
    ['depth', 'queued (depth)'],
  ]) {
    const item = document.createElement('li');
    const swatch = document.createElement('span');
    swatch.className = `swatch ${name}`;
    item.append(swatch, label);
    legend.append(item);
  }
  const figure = document.createElement('figure');
  figure.append(chart, legend);
  return figure;
}
