// Hover help for every Slothful Attention control, in txt2img and img2img.
// Generated from lib_slothful/params.py by tools/gen_docs.py: edit the table, not this file.
(function() {
    const HELP = {
        "enabled": "Turn the extension on for this generation. Off = the UNet is not touched at all.",
        "method": "Slothful: self-attention keys/values come from fewer, pooled tokens (an image-control knob: sharpness, contrast, bokeh, noise). Near-sighted Tile: queries are split into tiles that see their own tile plus a global sample (a speed-up for large images). Near-sighted Attention: both, with tile size and global share moving over time.",
        "profile": "Fixed: the original nodes with their bugs fixed (in/out strength not swapped, blend 1 = fully pooled, exact token grid, no edge tokens lost, no padding tokens in K/V, middle block has its own settings). ComfyUI-compatible: reproduces the 2023 nodes' numbers, quirks included, so ComfyUI workflow values give the same attention.",
        "schedule": "What 'time' means for Peak time: Model timestep = 1 - t/1000 of the UNet's timestep, as the original nodes (0 = start, 1 = end); on flow-matching DiTs (Flux, Chroma) 1 - sigma, sigma the noise level after the schedule's shift, so time follows the noise, not the step count. Sampling progress = fraction of the sampling steps done; use it for UNets whose timesteps are not on 0..999 (EDM).",
        "peak_time": "When the effect is strongest, from 0 (first step) to 1 (last step). The strength follows a bell curve around it: exp(-((time - peak) x decay)^2).",
        "time_decay": "How fast the effect fades away from Peak time. 0 = full strength at every step. Higher = only near the peak. If the composition changes too much, raise it or lower Peak time; 2.5 with peak 0.5 keeps the composition closer.",
        "in_mode": "How K/V tokens are sampled in the input (down) blocks (on Flux and Chroma: the double-stream blocks). 2D: square-ish cells on the image grid (gentle). 1D: runs of tokens in raster order, crossing rows (stronger, breaks sooner). AVG averages a cell, MAX keeps its largest value per channel (harder contrast).",
        "in_depth_decay": "Weakens the reduction at deeper (lower resolution) levels: the rate is multiplied by (1/2)^(depth x decay), depth counted from the model's first level with attention. 0 = same strength at every level. No effect on DiTs: all their blocks see one grid.",
        "in_slothful": "Base reduction rate in the input (down) blocks (on Flux and Chroma: the double-stream blocks): about how many image tokens become one K/V token at peak time and the first attention level. 1 or less = off. The real factor is rounded up to whole cells (2 -> 2x1, 4 -> 2x2, 6 -> 3x2, 9 -> 3x3).",
        "in_k_blend": "Keys: 0 = one token picked per cell (top-left, sharp), 1 = the pooled cell (soft), between = a mix. Raising it on the input blocks gives a bokeh-like, less noisy look.",
        "in_v_blend": "Values: 0 = one token picked per cell, 1 = the pooled cell, between = a mix. On the output blocks it moves contrast: AVG softer, MAX harder. Keep it at 0.5 or less.",
        "middle_mode": "How K/V tokens are sampled in the middle block (DiTs have none). 2D: square-ish cells on the image grid (gentle). 1D: runs of tokens in raster order, crossing rows (stronger, breaks sooner). AVG averages a cell, MAX keeps its largest value per channel (harder contrast).",
        "middle_depth_decay": "Weakens the reduction at deeper (lower resolution) levels: the rate is multiplied by (1/2)^(depth x decay), depth counted from the model's first level with attention. 0 = same strength at every level. No effect on DiTs: all their blocks see one grid. The middle block default is 0, so Middle slothful is the stride used there. Ignored by the ComfyUI-compatible profile.",
        "middle_slothful": "Base reduction rate in the middle block (DiTs have none): about how many image tokens become one K/V token at peak time and the first attention level. 1 or less = off. The real factor is rounded up to whole cells (2 -> 2x1, 4 -> 2x2, 6 -> 3x2, 9 -> 3x3).",
        "middle_k_blend": "Keys: 0 = one token picked per cell (top-left, sharp), 1 = the pooled cell (soft), between = a mix. Raising it on the input blocks gives a bokeh-like, less noisy look.",
        "middle_v_blend": "Values: 0 = one token picked per cell, 1 = the pooled cell, between = a mix. On the output blocks it moves contrast: AVG softer, MAX harder. Keep it at 0.5 or less.",
        "out_mode": "How K/V tokens are sampled in the output (up) blocks (on Flux and Chroma: the single-stream blocks). 2D: square-ish cells on the image grid (gentle). 1D: runs of tokens in raster order, crossing rows (stronger, breaks sooner). AVG averages a cell, MAX keeps its largest value per channel (harder contrast).",
        "out_depth_decay": "Weakens the reduction at deeper (lower resolution) levels: the rate is multiplied by (1/2)^(depth x decay), depth counted from the model's first level with attention. 0 = same strength at every level. No effect on DiTs: all their blocks see one grid.",
        "out_slothful": "Base reduction rate in the output (up) blocks (on Flux and Chroma: the single-stream blocks): about how many image tokens become one K/V token at peak time and the first attention level. 1 or less = off. The real factor is rounded up to whole cells (2 -> 2x1, 4 -> 2x2, 6 -> 3x2, 9 -> 3x3).",
        "out_k_blend": "Keys: 0 = one token picked per cell (top-left, sharp), 1 = the pooled cell (soft), between = a mix. Raising it on the input blocks gives a bokeh-like, less noisy look.",
        "out_v_blend": "Values: 0 = one token picked per cell, 1 = the pooled cell, between = a mix. On the output blocks it moves contrast: AVG softer, MAX harder. Keep it at 0.5 or less.",
        "tiling_max_depth": "How many levels are tiled, counted from the model's first level with attention: 1 = only the highest-resolution attention level (SD1.5: 320 channels, SDXL: 640), 2 = two levels, 3 = all.",
        "tile_size": "Tile side in tokens at the tiled level (32 tokens = 256 px at SD1.5's first level, twice that per level deeper). The image is split into equal tiles no larger than this. Smaller = faster and more detail, less coherence.",
        "global_ratio": "Size of the global sample every tile also sees, relative to the tile's own tokens. 0 = pure local attention (fastest, may lose coherence); higher keeps the image coherent.",
        "base_tile_size": "Tile side in tokens far from Peak time (the tile size moves from base to peak with the time curve).",
        "peak_tile_size": "Tile side in tokens at Peak time.",
        "base_global_ratio": "Global sample size (relative to each tile's local K/V) far from Peak time.",
        "peak_global_ratio": "Global sample size (relative to each tile's local K/V) at Peak time.",
        "concat_local": "Each tile also attends to the same tile of the other images in its batch (cond and uncond kept apart). Makes batch images more alike; costs more attention.",
        "concat_global": "The global sample comes from every image in the batch (cond and uncond kept apart).",
        "first_pass": "Apply during the normal (first) sampling pass.",
        "hires_pass": "Apply during the hires. fix (second) pass, at its own size.",
        "preset": "A starting point: choosing one sets every control to its default, then to the preset's values. Slothful node (ComfyUI defaults): The 2023 Slothful Attention node at its defaults, quirks included (ComfyUI-compatible profile), at any size as the node. Near-sighted Tile node (ComfyUI defaults): The 2023 Near-sighted Tile node at its defaults: 32-token tiles, global sample half a tile (ComfyUI-compatible profile), at any size as the node. Near-sighted Attention node (ComfyUI defaults): The 2025 Near-sighted Attention node at its defaults: tiles 32 to 48 tokens, global ratio 1.0 to 0.5, Slothful reduction in 6 / out 4 (ComfyUI-compatible profile), at any size as the node. Keep composition: Slothful later and shorter (peak 0.5, decay 2.5): texture and detail change, the layout stays close to the image without the extension. Softer / bokeh: Slothful with pooled keys on the input blocks (In K blend 0.5): a bokeh-like, less noisy look. Crisper / more contrast: Slothful with MAX pooling on the output blocks and pooled values there (Out V blend 0.5): harder contrast, crisper edges. Speed for large images: Near-sighted Attention at every step with 24-token tiles and a small global sample: the largest speed-up, for 1024 px and up on SD1.5 (2048 px on SDXL); the look changes too. DiT: softer texture (Flux, Chroma): Slothful on a DiT's double-stream blocks only (In K blend 0.5, Out slothful 0), late and short (peak 0.6, decay 2.5): pooled image keys soften texture while the layout, which a flow model settles early, stays. On a UNet it acts on the input blocks. DiT: speed at 2048 px (Flux, Chroma): Near-sighted Attention at every step with 32-token tiles (512 px on Flux), a global ratio of 0.3 and in / out slothful 4 inside the tiles: at most 1.8x faster Flux at 2048 px (FLOP ceiling), 1.17x at 1024 px, where Auto keeps it off. Hires. fix pass only: Near-sighted Attention in the hires. fix pass only, at any size: the first pass is left as it is, the large second pass gets faster.",
        "size_gate": "Image size gate, checked for each pass at its own size (so a small first pass can run without the extension while the hires. fix pass uses it). Any size: always apply. A size: apply when width x height is at least that many pixels. Auto: Slothful applies at any size (it is an image control); the Near-sighted methods apply where the speed estimate (the FLOP model) gives at least 1.2x, i.e. where they can pay off."
    };
    const PREVIEW = "What the current settings do at this width x height, per UNet level and block group, at peak time: " +
        "the speed estimate (an upper bound), whether Apply from lets them run, and the tokens the red query reads. " +
        "Numbers per level: query tokens, K/V tokens each query attends to, tiles, share of self-attention FLOPs kept.";
    const PICTURE = "Each panel is one attention level's token grid (zoomed beside it where tokens are small). " +
        "Boxes: tiles. Blue: pooled K/V windows; dark dots: picked tokens; orange: the global sample. " +
        "Click a token to see what its query reads; faded tokens are not read.";

    function setTitle(el, text) {
        if (!el) return;
        el.title = text;
        // A1111's hints.js skips elements that already have a title; label text and inputs get it too.
        el.querySelectorAll("label, span, input, textarea, .wrap").forEach(function(child) { child.title = text; });
    }

    onUiLoaded(function() {
        ["txt2img", "img2img"].forEach(function(tab) {
            const prefix = "script_" + tab + "_slothful_attention_";
            Object.keys(HELP).forEach(function(key) {
                const el = gradioApp().getElementById(prefix + key);
                if (el) setTitle(el, HELP[key]);
            });
            const header = gradioApp().getElementById(prefix + "enabled");
            if (header) {
                setTitle(header.querySelector(".label-wrap"), HELP.enabled);
                setTitle(gradioApp().getElementById(prefix + "enabled-visible-checkbox"), HELP.enabled);
            }
            setTitle(gradioApp().getElementById(prefix + "preview"), PREVIEW);
            setTitle(gradioApp().getElementById(prefix + "picture"), PICTURE);
        });
    });
})();
