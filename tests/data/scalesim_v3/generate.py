"""Regenerate resnet18_32x32.csv with SCALE-Sim v3 itself (not run by the test suite; needs scalesim).

    python3 -m venv /tmp/scalesim-venv && /tmp/scalesim-venv/bin/pip install "numpy<2.4" scalesim==3.0.0
    /tmp/scalesim-venv/bin/python tests/data/scalesim_v3/generate.py

For every layer of resnet18.csv on the 32×32 array of ws.cfg / os.cfg this builds SCALE-Sim's own operand
matrices and runs its systolic compute model (``systolic_compute_ws`` / ``_os``) to its demand matrices;
SCALE-Sim's total cycles with no memory stall are the demand-matrix length − 1. Its cycle-by-cycle memory
simulation is too slow to run on all 42 layer-dataflow pairs on a shared 2-core machine, so it runs in
full (``single_layer_sim.run()``) only on the layers named in FULL, and the script asserts that there the
reported total cycles equal the demand length − 1 with zero stall cycles.
"""

from __future__ import annotations

import json
from pathlib import Path

from scalesim.layout_utils import layouts
from scalesim.scale_config import scale_config
from scalesim.single_layer_sim import single_layer_sim
from scalesim.topology_utils import topologies

HERE = Path(__file__).resolve().parent
FULL = {"ws": {"Conv5_s", "Conv5_2b", "FC"}, "os": {"Conv5_s", "FC"}}


def run(df: str) -> list[dict]:
    cfg = scale_config()
    cfg.read_conf_file(str(HERE / f"{df}.cfg"))
    topo = topologies()
    topo.load_arrays(topofile=str(HERE / "resnet18.csv"))
    lay = layouts()
    lay.load_arrays(layoutfile=str(HERE / "layout.csv"))
    out = []
    for lid in range(topo.get_num_layers()):
        name = topo.topo_arrays[lid][0]
        s = single_layer_sim()
        s.set_params(layer_id=lid, config_obj=cfg, topology_obj=topo, layout_obj=lay, verbose=False)
        o = s.op_mat_obj
        _, i_m = o.get_ifmap_matrix()
        _, f_m = o.get_filter_matrix()
        _, of_m = o.get_ofmap_matrix()
        cs = s.compute_system
        if df == "ws":
            cs.set_params(config_obj=cfg, ifmap_op_mat=i_m, filter_op_mat=f_m, ofmap_op_mat=of_m,
                          sparsity_ratio_N=s.sparsity_ratio_N, sparsity_ratio_M=s.sparsity_ratio_M,
                          ifmap_op_mat_original=o.ifmap_addr_matrix_original,
                          sparsity_filter_array=o.sparse_filter_array)
        else:
            cs.set_params(config_obj=cfg, ifmap_op_mat=i_m, filter_op_mat=f_m, ofmap_op_mat=of_m)
        cs.get_prefetch_matrices()
        rows = {m.shape[0] for m in cs.get_demand_matrices()}
        assert len(rows) == 1, rows
        rec = {"layer": name, "ofmap": [int(o.ofmap_rows), int(o.ofmap_cols)], "total": rows.pop() - 1, "full": ""}
        if name in FULL[df]:
            s2 = single_layer_sim()
            s2.set_params(layer_id=lid, config_obj=cfg, topology_obj=topo, layout_obj=lay, verbose=False)
            s2.run()
            _, total, stalls, *_ = s2.get_compute_report_items()
            assert (int(total), int(stalls)) == (rec["total"], 0), (name, total, stalls, rec)
            rec["full"] = int(total)
        print(json.dumps(rec), flush=True)
        out.append(rec)
    return out


def main() -> int:
    ws, os_ = run("ws"), run("os")
    lines = ["layer,ofmap_h,ofmap_w,ws_total_cycles,os_total_cycles,ws_full_simulator,os_full_simulator"]
    for a, b in zip(ws, os_, strict=True):
        lines.append(f"{a['layer']},{a['ofmap'][0]},{a['ofmap'][1]},{a['total']},{b['total']},{a['full']},{b['full']}")
    (HERE / "resnet18_32x32.csv").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
