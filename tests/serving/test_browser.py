"""The web page in a real browser: headless Chromium driven by selenium.

Each family's model is trained for one tiny epoch (a few hundred examples, small widths),
exported and served once per module; the tests use the page as a person would (mouse
strokes, clicks, keys) and check what it shows against the API's own answer for the same
inputs, which they read from ``window.adljaxLast`` and POST themselves.

Needs Debian's ``chromium`` and ``chromium-driver`` (CI installs them); without them the
tests fail, saying so, rather than skip.
"""

import json
import os
import shutil
import time

import httpx
import jax
import numpy as np
import pytest

import adljax
from adljax.data import ArrayDataset
from adljax.experiment import model_for_dataset
from adljax.gan.experiment import generation_data
from adljax.gan.task import Generation
from adljax.gan.training import AdversarialOptimizer, create_gan_state, make_gan_train_step
from adljax.models import create_model, model_config
from adljax.serving.service import create_app, running
from adljax.tasks import get_task

INSTALL = "apt-get install chromium chromium-driver"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
# The page sends one input per request, but for a generator's grid: fewer padded batch
# sizes to compile at start-up.
MAX_BATCH = {"dcgan": 8, "ring": 8}

# name -> (model, dataset, examples trained on, dataset options, model config)
MODELS = {
    "digits": ("cnn", "digits", 512, {}, {}),
    "house": ("linear", "housing_synthetic", 400, {}, {}),
    "shapes": (
        "detector",
        "shapes",
        64,
        {"num_train": 64, "num_test": 8},
        {"width": 8, "stage_sizes": (1, 1), "strides": (8,), "head_width": 16, "tower_depth": 1},
    ),
    "dcgan": ("dcgan", "digits", 256, {}, {"features": 16}),
    "ring": (
        "gan",
        "ring8",
        256,
        {},
        {"generator_sizes": (32, 32), "discriminator_sizes": (32, 32)},
    ),
    "charlm": ("charlm", "pydoc_chars", 256, {"seq_len": 32}, {"hidden_size": 32}),
    "copy": ("gru", "copy", 256, {"seq_len": 12}, {"hidden_size": 16}),  # a tagger
}
GANS = ("gan", "dcgan")


def _train_and_export(name: str, directory) -> adljax.serving.Artifact:
    """One epoch on the first few examples; a checkpoint (so the export keeps test examples)."""
    model, dataset, count, options, config = MODELS[name]
    data = adljax.data.load(dataset, "train", **options)
    if model in GANS:
        data = generation_data(data)
    data = data if isinstance(data, ArrayDataset) else data.to_arrays()
    data = ArrayDataset(data.info, {k: v[:count] for k, v in data.arrays.items()}, data.split)
    tx = adljax.create_optimizer("adam", 3e-3)
    if model in GANS:
        net = create_model(model, input_shape=data.info.input_shape, **config)
        txs = AdversarialOptimizer(tx, tx)
        init = jax.jit(lambda x, key: create_gan_state(net, txs, x, key))
        task, step = Generation(), make_gan_train_step(Generation())
    else:
        net = model_for_dataset(model, data, **config)
        init = jax.jit(lambda x, key: adljax.create_train_state(net, tx, x, key))
        task, step = get_task(data.info.task), None
    state = init(data.arrays["x"][:1], jax.random.key(0))  # jitted: eager init is slow
    # A checkpoint where the page offers test examples (its export reloads the test split).
    checkpoint = (
        directory / "checkpoints" if name in ("digits", "house", "shapes", "copy") else None
    )
    run = {
        "model": {"name": model, "config": model_config(net)},
        "dataset": {"name": dataset, "options": options, "info": data.info.to_dict()},
    }
    result = adljax.fit(
        state,
        data,
        task=task,
        epochs=1,
        batch_size=32,
        progress=False,
        train_step=step,
        checkpoint_dir=checkpoint,
        run_info=run,
    )
    source, info = (checkpoint, None) if checkpoint else (result.state, data.info)
    path = adljax.serving.export(source, directory / "export", info=info, platforms=("cpu",))
    return adljax.serving.load(path)


@pytest.fixture(scope="module")
def serve(tmp_path_factory, fast_compiles):
    """``serve(name) -> base URL`` of that model's service, trained and started once."""
    started, stops = {}, []

    def get(name: str) -> str:
        if name not in started:
            artifact = _train_and_export(name, tmp_path_factory.mktemp(name))
            context = running(create_app(artifact, max_batch_size=MAX_BATCH.get(name, 1)))
            started[name] = context.__enter__()
            stops.append(context)
        return started[name]

    yield get
    for context in reversed(stops):
        context.__exit__(None, None, None)


@pytest.fixture(scope="module")
def browser():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("the browser tests need selenium: pip install -e '.[test]'")
    binary = os.environ.get("ADLJAX_CHROMIUM") or next(
        (shutil.which(name) for name in BROWSERS if shutil.which(name)), None
    )
    driver_path = os.environ.get("ADLJAX_CHROMEDRIVER") or shutil.which("chromedriver")
    if binary is None or driver_path is None:
        pytest.fail(
            f"the browser tests need Chromium and chromedriver on PATH "
            f"(found browser {binary!r}, driver {driver_path!r}): {INSTALL}"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.add_argument("--window-size=1280,1000")
    try:
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
    except Exception as error:  # any start-up failure has the same fix
        pytest.fail(f"headless Chromium did not start ({error}); {INSTALL}")
    yield driver
    driver.quit()


def wait_for(driver, script: str, timeout: float = 60.0):
    """The first truthy value of ``script`` run in the page, polled."""
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(script)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"the page never satisfied `{script}`")
        time.sleep(0.03)


def open_page(driver, url: str) -> None:
    driver.get(url)
    wait_for(driver, "return document.body.dataset.ready === 'true'")
    wait_for(driver, "return window.adljax.busy === 0")


def done(driver) -> int:
    return driver.execute_script("return window.adljax.done")


def last(driver) -> dict:
    return driver.execute_script("return window.adljaxLast")


def text(driver, id_: str) -> str:
    return driver.execute_script(f"return document.getElementById('{id_}').textContent")


def canvas_rgb(driver, id_: str, x: int, y: int) -> list[int]:
    """The RGB of one pixel of a canvas (in its own pixel units)."""
    return driver.execute_script(
        f"return Array.from(document.getElementById('{id_}').getContext('2d')"
        f".getImageData({x}, {y}, 1, 1).data.slice(0, 3))"
    )


def type_into(driver, id_: str, value: str) -> None:
    field = driver.find_element("id", id_)
    field.clear()
    field.send_keys(value)


def no_error(driver) -> None:
    assert driver.execute_script("return document.getElementById('error').hidden"), text(
        driver, "error"
    )


def test_a_drawn_stroke_shows_the_apis_class_for_the_pixels_sent(browser, serve):
    from selenium.webdriver.common.action_chains import ActionChains

    url = serve("digits")
    open_page(browser, url)
    assert text(browser, "model-name") == "cnn" and text(browser, "family") == "classifier"
    canvas = browser.find_element("id", "draw-canvas")
    assert (canvas.size["width"], canvas.size["height"]) == (280, 280)  # 35 pixels a cell
    before = done(browser)
    # A vertical stroke down the middle of column 4 (x 157, offsets are from the centre),
    # from y 50 to y 230: rows 1 to 6.
    actions = ActionChains(browser).move_to_element_with_offset(canvas, 17, -90).click_and_hold()
    for _ in range(6):
        actions.move_by_offset(0, 30)
    actions.release().perform()
    wait_for(browser, f"return window.adljax.done > {before}")
    no_error(browser)
    sent = last(browser)
    assert sent["endpoint"] == "/classify"
    pixels = np.array(sent["inputs"])
    assert pixels.shape == (1, 8, 8, 1) and pixels.min() >= 0 and pixels.max() <= 255
    image = pixels[0, :, :, 0]
    assert (image[2:6, 4] >= 250).all(), image  # ink, high, where the stroke went
    assert (image[:, :3] == 0).all() and (image[:, 6:] == 0).all(), image  # nothing elsewhere
    answer = httpx.post(f"{url}/classify", json={"inputs": sent["inputs"]}).json()
    top = answer["predictions"][0]
    assert text(browser, "top-class") == top["class"]
    assert sent["response"] == answer
    rows = browser.find_elements("css selector", "#bars .bar-row")
    assert len(rows) == 10
    assert browser.find_element("css selector", "#bars .bar-row.top").get_attribute(
        "data-class-id"
    ) == str(top["class_id"])

    # A test image loaded onto the canvas comes back, through the area average, unchanged.
    examples = httpx.get(f"{url}/examples").json()["examples"]
    before = done(browser)
    browser.find_element("id", "draw-example-3").click()
    wait_for(browser, f"return window.adljax.done > {before}")
    assert last(browser)["inputs"] == [examples[3]]
    expected = httpx.post(f"{url}/classify", json={"inputs": [examples[3]]}).json()
    assert text(browser, "top-class") == expected["predictions"][0]["class"]

    browser.find_element("id", "clear").click()
    assert canvas_rgb(browser, "draw-canvas", 157, 140) == [0, 0, 0]
    assert text(browser, "top-class") == "–"


def test_b_detection_page_draws_as_many_boxes_as_the_api_returns(browser, serve):
    from selenium.webdriver.common.keys import Keys

    url = serve("shapes")
    open_page(browser, url)  # shows example 0 at once
    slider = browser.find_element("id", "min-score")
    before = done(browser)
    slider.send_keys(*[Keys.LEFT] * 5)  # 0.30 -> 0.05: the tiny model's boxes score low
    wait_for(browser, f"return window.adljax.done > {before}")
    assert text(browser, "min-score-value") == "0.05"
    examples = httpx.get(f"{url}/examples").json()["examples"]
    before = done(browser)
    browser.find_element("id", "detect-example-2").click()
    wait_for(browser, f"return window.adljax.done > {before}")
    no_error(browser)
    shown = last(browser)
    assert shown["inputs"] == [examples[2]] and shown["request"]["min_score"] == 0.05
    answer = httpx.post(f"{url}/detect", json={"inputs": [examples[2]], "min_score": 0.05})
    detections = answer.json()["detections"][0]
    assert detections, "the tiny detector should find something above 0.05"
    assert int(text(browser, "box-count")) == len(detections) == shown["boxesDrawn"]
    assert len(browser.find_elements("css selector", "#detections tr")) == len(detections)
    assert shown["response"]["detections"][0] == detections
    # The best box is drawn last, on top: the middle of its bottom edge has its class's colour.
    palette = browser.execute_script("return [0, 1, 2].map(classColour)")
    best = detections[0]
    x0, _, x1, y1 = best["box"]
    size = browser.execute_script("return document.getElementById('detect-canvas').width")
    scale = size // 64
    rgb = [int(palette[best["class_id"]][i : i + 2], 16) for i in (1, 3, 5)]
    x, y = round((x0 + x1) / 2 * scale), min(round(y1 * scale), size - 1)
    assert canvas_rgb(browser, "detect-canvas", x, y) == rgb


def test_c_house_price_form_shows_the_apis_value(browser, serve):
    url = serve("house")
    open_page(browser, url)
    meta = httpx.get(f"{url}/metadata").json()
    names = meta["feature_names"]
    labels = [e.text for e in browser.find_elements("css selector", "#feature-fields label")]
    assert labels == names
    means = meta["dataset"]["info"]["extras"]["feature_mean"]
    defaults = [
        float(browser.find_element("id", f"feature-{f}").get_attribute("value")) for f in range(4)
    ]
    np.testing.assert_allclose(defaults, means, atol=0.005)
    type_into(browser, "feature-0", "150")
    type_into(browser, "feature-2", "12.5")
    before = done(browser)
    browser.find_element("id", "predict").click()
    wait_for(browser, f"return window.adljax.done > {before}")
    no_error(browser)
    features = last(browser)["inputs"]
    assert features == [[150, defaults[1], 12.5, defaults[3]]]
    value = httpx.post(f"{url}/regress", json={"inputs": features}).json()
    value = value["predictions"][0]["value"]
    shown = browser.find_element("id", "prediction")
    assert json.loads(shown.get_attribute("data-value")) == value
    assert float(shown.text) == pytest.approx(value[0], rel=1e-4)

    # A bad number never reaches the API; the page says which field.
    type_into(browser, "feature-1", "lots")
    before = done(browser)
    browser.find_element("id", "predict").click()
    wait_for(browser, f"return window.adljax.done > {before}")
    assert "bedrooms" in text(browser, "error")


def test_d_generator_pages_draw_count_samples(browser, serve):
    from selenium.webdriver.common.keys import Keys

    url = serve("dcgan")
    open_page(browser, url)
    type_into(browser, "seed", "3")
    type_into(browser, "count", "6")
    before = done(browser)
    browser.find_element("id", "sample").click()
    wait_for(browser, f"return window.adljax.done > {before}")
    no_error(browser)
    canvases = browser.find_elements("css selector", "#samples canvas")
    assert len(canvases) == 6
    samples = httpx.post(f"{url}/generate", json={"seed": 3, "count": 6}).json()["samples"]
    assert last(browser)["response"]["samples"] == samples
    pixels = browser.execute_script(
        "const c = document.querySelectorAll('#samples canvas')[5];"
        "return Array.from(c.getContext('2d').getImageData(0, 0, 8, 8).data)"
    )
    grey = np.array(pixels).reshape(8, 8, 4)[..., 0]
    np.testing.assert_array_equal(grey, np.round(255 * np.array(samples[5])[..., 0]))
    # The slider walks the interpolation (seed 0 to 1, 8 frames): frame 3 is the API's.
    browser.find_element("id", "frame-slider").send_keys(Keys.RIGHT, Keys.RIGHT)
    assert text(browser, "frame-index") == "3 / 8"
    walk = {"interpolate": {"from_seed": 0, "to_seed": 1, "steps": 8}}
    frame = np.array(httpx.post(f"{url}/generate", json=walk).json()["samples"][2])
    scale = browser.execute_script("return document.getElementById('frame-canvas').width") // 8
    centre = canvas_rgb(browser, "frame-canvas", scale // 2 + 5 * scale, scale // 2 + 4 * scale)
    assert centre[0] == round(255 * frame[4, 5, 0])

    url = serve("ring")
    open_page(browser, url)
    type_into(browser, "count", "7")
    before = done(browser)
    browser.find_element("id", "sample").click()
    wait_for(browser, f"return window.adljax.done > {before}")
    assert browser.find_elements("id", "scatter")
    assert last(browser)["drawn"] == 7 and len(last(browser)["response"]["samples"]) == 7


def test_e_language_model_writes_the_requested_length(browser, serve):
    url = serve("charlm")
    open_page(browser, url)
    type_into(browser, "prompt", "def ")
    type_into(browser, "length", "45")
    type_into(browser, "temperature", "0.8")
    before = done(browser)
    browser.find_element("id", "write").click()
    wait_for(browser, "return document.getElementById('write-status').dataset.state === 'done'")
    no_error(browser)
    written = text(browser, "generated")
    assert len(written) == 45
    assert done(browser) - before == 3  # 20 + 20 + 5 characters
    # The same three requests, made here, write the same text.
    expected = ""
    for chunk, length in enumerate((20, 20, 5)):
        body = {"prompt": ("def " + expected)[-500:], "length": length, "temperature": 0.8}
        answer = httpx.post(f"{url}/generate", json={**body, "seed": chunk}).json()
        expected += answer["text"]
    assert written == expected

    # An API refusal shows in #error.
    type_into(browser, "temperature", "500")
    before = done(browser)
    browser.find_element("id", "write").click()
    wait_for(browser, f"return window.adljax.done > {before}")
    assert "temperature" in text(browser, "error") and "422" in text(browser, "error")


def test_g_other_families_get_a_json_form(browser, serve):
    url = serve("copy")
    open_page(browser, url)
    assert text(browser, "family") == "tagger"
    example = httpx.get(f"{url}/examples").json()["examples"][0]
    body = json.loads(browser.find_element("id", "json-body").get_attribute("value"))
    assert body == {"inputs": [example]}  # filled in with the first test example
    before = done(browser)
    browser.find_element("id", "json-send").click()
    wait_for(browser, f"return window.adljax.done > {before}")
    no_error(browser)
    answer = httpx.post(f"{url}/classify", json=body).json()
    assert json.loads(text(browser, "json-answer")) == answer
    assert len(answer["predictions"][0]["classes"]) == len(example)

    field = browser.find_element("id", "json-body")
    field.clear()
    field.send_keys('{"inputs": [[1, 2]]}')  # the wrong length: the API says so
    before = done(browser)
    browser.find_element("id", "json-send").click()
    wait_for(browser, f"return window.adljax.done > {before}")
    assert text(browser, "error").startswith("422: inputs:")


@pytest.mark.parametrize("name", list(MODELS))
def test_f_docs_list_every_endpoint(browser, serve, name):
    url = serve(name)
    browser.get(f"{url}/docs")
    # Polled from the first moment: the page's script may not have defined `adljax` yet.
    wait_for(browser, "return window.adljax !== undefined && window.adljax.done > 0")
    no_error(browser)
    schema = httpx.get(f"{url}/openapi.json").json()
    endpoints = httpx.get(f"{url}/metadata").json()["service"]["endpoints"]
    assert {f"/{e}" for e in endpoints} <= set(schema["paths"])
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            section = browser.find_element("id", f"endpoint-{method}-{path[1:]}")
            assert path in section.text and operation["summary"] in section.text
            curls = section.find_elements("css selector", "pre.curl")
            assert curls and all(f"{url}{path}" in curl.text for curl in curls)
            if method == "post":
                shown = section.find_element("css selector", "pre.schema").text
                wanted = operation["requestBody"]["content"]["application/json"]["schema"]
                assert json.loads(shown) == wanted
                for curl in curls:  # each example's body is one the API takes
                    body = json.loads(curl.get_attribute("data-body"))
                    assert httpx.post(f"{url}{path}", json=body).status_code == 200
