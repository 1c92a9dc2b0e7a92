#!/usr/bin/env bash
# Draws the latent-space guide's pictures (docs/*.png) from a checkpoint trained on CelebA.
#
#   scripts/latent-pictures.sh CHECKPOINT CELEBA_DIR [OUT_DIR]
#
# CELEBA_DIR holds img_align_celeba/, list_attr_celeba.txt and list_eval_partition.txt; it
# is prepared into cache/ at the model's size on first use. Morph rows are the first
# validation faces that lack the attribute, so adding it is what the picture shows.
set -euo pipefail
ckpt=${1:?usage: $0 CHECKPOINT CELEBA_DIR [OUT_DIR]}
celeba=${2:?usage: $0 CHECKPOINT CELEBA_DIR [OUT_DIR]}
out=${3:-docs}
bin=${VAE_CPU:-target/release/vae-cpu}
mkdir -p "$out"
[ -x "$bin" ] || cargo build --release --locked

# The first N validation images (partition 1) present in the folder whose attribute is VALUE.
pick() { # ATTRIBUTE VALUE N
    local k=0
    awk -v attr="$1" -v want="$2" '
        { sub(/\r$/, "") }
        FNR == NR { if ($2 == 1) val[$1] = 1; next }
        FNR == 2 { for (i = 1; i <= NF; i++) if ($i == attr) col = i + 1; next }
        FNR > 2 && ($1 in val) && $col == want { print $1 }
    ' "$celeba/list_eval_partition.txt" "$celeba/list_attr_celeba.txt" |
        while read -r name; do
            if [ -f "$celeba/img_align_celeba/$name" ]; then
                echo "$celeba/img_align_celeba/$name"
                k=$((k + 1))
                [ "$k" -lt "$3" ] || break
            fi
        done
}

common=(--checkpoint "$ckpt")
"$bin" sample "${common[@]}" --n 16 --seed 3 --temperature 0.8 --scale 2 --out "$out/samples.png"
"$bin" reconstruct "${common[@]}" --data "$celeba" --split val --n 8 --scale 2 --out "$out/reconstructions.png"
mapfile -t pair < <(pick Male -1 6 | sed -n '1p;6p')
"$bin" interpolate "${common[@]}" "${pair[@]}" --steps 8 --spherical --scale 2 --out "$out/interpolation.png"
for attr in Smiling Eyeglasses Attractive; do
    lower=$(echo "$attr" | tr 'A-Z' 'a-z')
    "$bin" attribute-vector "${common[@]}" --data "$celeba" --attr "$attr" --quiet --out "$out/$lower.attrvec"
    mapfile -t faces < <(pick "$attr" -1 3)
    "$bin" morph "${common[@]}" --vector "$out/$lower.attrvec" "${faces[@]}" --range -3:3:7 --scale 2 \
        --out "$out/morph-$lower.png"
    rm "$out/$lower.attrvec"
done
"$bin" traverse "${common[@]}" --data "$celeba" --split val --index 0 --dims 0..8 --range -3:3:7 --scale 2 \
    --out "$out/traverse.png"
rm -f "$out/traverse.csv"
"$bin" latent-map "${common[@]}" --data "$celeba" --attr Attractive --split val --limit 780 --quiet \
    --out "$out/latent-map-attractive.png"
rm -f "$out/latent-map-attractive.csv"
"$bin" activations "${common[@]}" --data "$celeba" --split val --index 0 --max-maps 16 --out "$out/activations"
