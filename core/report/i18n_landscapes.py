"""The Landscapes page's text (English and Japanese): its form, views, convexity maps and what each panel's function is.

Merged into `core.report.i18n`'s tables when it is imported (that module is long); plain dicts only: this module
imports nothing of the project.
"""

from __future__ import annotations

EN: dict[str, str] = {
    "land.title": "Loss landscapes",
    "land.intro": "Choose up to four models; they are evaluated on the same directions seed, grid, images and "
    "masks. The coarse grid appears first and refines while it computes.",
    "land.go": "Compute",
    "land.nan_note": "{model}: {n} of {total} grid points are not finite (NaN or inf, usually far from the centre): "
    "they are drawn as gaps and left out of the landscape numbers.",
    "land.pick": "Pick at least one model.",
    "land.fig_title": "Loss landscape",
    "land.slices_title": "1-D slices through the trained weights",
    "land.diff_need_two": "The difference view needs two models.",
    "land.diff_title": "Difference: {a} minus {b}",
    "land.numbers": "Landscape numbers",
    "land.numbers_help": "centre_loss: loss at the trained weights; increase_r*: mean loss increase on a circle of "
    "that radius; basin_width: half-width of the region whose increase stays under 10% of the centre loss; "
    "flat_fraction: share of the grid under that threshold; curvature_*: quadratic fit at the centre; "
    "convex_fraction: share of points with a locally convex surface.",
    "land.cvx_help": "Convexity as Li et al. (2018) draw it: at each grid point, |λmin / λmax| of the Hessian of the "
    "loss in all the moving parameters (not only the two plotted directions), from one Lanczos run. Near 0: locally "
    "convex; near 1 or above: strongly non-convex. A point counts as convex below {threshold}. This is not the "
    "landscape numbers' convex_fraction, which only asks whether the plotted 2-D surface curves up.",
    "land.cvx_grid": "Convexity grid (points per axis)",
    "land.cvx_iter": "Lanczos steps per point",
    "land.cvx_go": "Compute convexity maps",
    "land.cvx_prompt": "Each point is a Lanczos run of up to {iters} Hessian-vector products ({points} points per "
    "model); the maps are computed in the background, cached point by point, and reuse any coarser map.",
    "land.cvx_need_2d": "The convexity view needs a 2-D slice (choose 2-D and compute).",
    "land.cvx_title": "Convexity: |λmin / λmax| of the Hessian, loss contours over it",
    "land.cvx_numbers": "Convexity numbers",
    "land.cvx_area": "convex area (share of points with |λmin / λmax| < {threshold})",
    "land.cvx_median": "median |λmin / λmax|",
    "land.cvx_lmax": "λmax at the centre",
    "land.cvx_lmin": "λmin at the centre",
    "land.cvx_unconverged": "points not converged in the Lanczos steps",
}

JA: dict[str, str] = {
    "land.title": "損失地形",
    "land.intro": "最大4つのモデルを選びます。どのモデルも同じ方向シード、グリッド、画像、マスクで評価します。"
    "粗いグリッドが先に表示され、計算が進むにつれて細かくなります。",
    "land.go": "計算",
    "land.nan_note": "{model}: {total}点中{n}点の損失が有限値ではありません(NaNまたはinf、多くは中心から遠い点)。"
    "図では空白として表示し、ランドスケープの数値からは除外しています。",
    "land.pick": "モデルを1つ以上選んでください。",
    "land.fig_title": "損失地形",
    "land.slices_title": "学習済みの重みを通る1次元断面",
    "land.diff_need_two": "差分の表示には2つのモデルが必要です。",
    "land.diff_title": "差分: {a} − {b}",
    "land.numbers": "損失地形の指標",
    "land.numbers_help": "centre_loss: 学習済み重みでの損失、increase_r*: その半径の円上での平均損失増加、"
    "basin_width: 損失増加が中心の損失の10%未満にとどまる領域の半幅、flat_fraction: その閾値未満のグリッドの割合、"
    "curvature_*: 中心での2次関数当てはめの曲率、convex_fraction: 局所的に凸な点の割合。",
    "land.cvx_help": "Li et al. (2018) と同じ凸性の描き方です: 各グリッド点で、動かすすべてのパラメータ(描画する"
    "2方向だけではない)についての損失のヘッセ行列の |λmin / λmax| を1回のLanczos法で求めます。0に近いほど局所的に凸、"
    "1前後以上は強く非凸です。{threshold}未満の点を凸と数えます。地形の指標のconvex_fraction(描画した2次元の"
    "曲面が上に曲がっているかだけを見る)とは別の量です。",
    "land.cvx_grid": "凸性マップのグリッド(軸あたりの点数)",
    "land.cvx_iter": "1点あたりのLanczosステップ数",
    "land.cvx_go": "凸性マップを計算",
    "land.cvx_prompt": "各点は最大{iters}回のヘッセ行列ベクトル積のLanczos法です(1モデルあたり{points}点)。"
    "バックグラウンドで計算し、点ごとにキャッシュし、粗いマップの点を再利用します。",
    "land.cvx_need_2d": "凸性の表示には2次元の断面が必要です(2次元を選んで計算してください)。",
    "land.cvx_title": "凸性: ヘッセ行列の |λmin / λmax| と損失の等高線",
    "land.cvx_numbers": "凸性の指標",
    "land.cvx_area": "凸な領域(|λmin / λmax| < {threshold} の点の割合)",
    "land.cvx_median": "|λmin / λmax| の中央値",
    "land.cvx_lmax": "中心でのλmax",
    "land.cvx_lmin": "中心でのλmin",
    "land.cvx_unconverged": "Lanczosステップ内で収束しなかった点",
}
