// Charts as data: a Vega-Lite spec compiled by vega-lite and rendered by vega to SVG in Node (no browser), and
// to PNG through resvg. Reports embed the SVG; the PNG is for places that want a picture file.
import * as vega from 'vega';
import { type TopLevelSpec, compile } from 'vega-lite';

export type ChartSpec = TopLevelSpec;

/** The chart as SVG text. */
export async function chartSvg(spec: ChartSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
