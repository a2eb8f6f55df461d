#!/usr/bin/env bash
# The refusal messages quoted in docs/recipes.md: bad recipes given to `augtool expand`.
# Usage: PYTHONPATH=$PWD bash checks/recipe_errors.sh   (from the repository root)
#        bash checks/recipe_errors.sh --make DIR   only write raw/ and the recipes into DIR
#        (docs/regenerate.py does this before it runs the quoted commands of docs/recipes.md)
set -u
if [ "${1:-}" = "--make" ]; then
    dir=$2
else
    dir=$(mktemp -d)
    trap 'rm -rf "$dir"' EXIT
fi
mkdir -p "$dir/raw/A"
python -c "import numpy as np, cv2; cv2.imwrite('$dir/raw/A/a.png', np.full((32, 32, 3), 128, np.uint8))"
hsv=$(NO_ALBUMENTATIONS_UPDATE=1 python -c "
import json, albumentations as A
d = A.to_dict(A.HueSaturationValue(p=1.0)); d['__version__'] = '1.4.24'; print(json.dumps(d))")
printf "[[transform]]\nname = 'blur_rgb'\nsigma_range = [8, 4]\n" > "$dir/range.toml"
printf "[[transform]]\nname = 'gray'\n\n[[transform]]\nname = 'sparkle'\n" > "$dir/unknown.toml"
printf "[[transform]]\nname = 'gray'\n[[transform]]\nname = 'hsv'\nalbumentations = '''%s'''\n" "$hsv" > "$dir/version.toml"
printf "[[transform]]\nname = 'gray'\ncolour = \n" > "$dir/malformed.toml"
typo=$(NO_ALBUMENTATIONS_UPDATE=1 python -c "
import json, albumentations as A
d = A.to_dict(A.HueSaturationValue(p=1.0)); d['transform']['hue_shift_limt'] = [-5, 5]; print(json.dumps(d))")
printf "[[transform]]\nname = 'hsv'\nalbumentations = '''%s'''\n" "$typo" > "$dir/typo.toml"
# The same recipe with a valid version, for a machine without albumentations.
printf "[[transform]]\nname = 'gray'\n[[transform]]\nname = 'hsv'\nalbumentations = '''%s'''\n" \
    "${hsv/1.4.24/2.0.8}" > "$dir/needs.toml"
if [ "${1:-}" = "--make" ]; then
    exit 0
fi
for name in range unknown version typo malformed; do
    echo "\$ augtool expand raw out --recipe $name.toml"
    (cd "$dir" && python -m cli expand raw out --recipe "$name.toml" 2>&1; echo "exit status $?") \
        | sed "s#$dir/##g"
done
# needs.toml on a machine without albumentations (simulated: the import is made to fail).
echo "\$ augtool expand raw out --recipe needs.toml   # albumentations not installed"
(cd "$dir" && python -c "import sys; sys.modules['albumentations'] = None; import cli; cli.main()" \
    expand raw out --recipe needs.toml 2>&1; echo "exit status $?") | sed "s#$dir/##g"
