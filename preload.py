def preload(parser):
    parser.add_argument("--disable-slothful-attention", action="store_true",
                        help="turn the Slothful Attention extension off for the whole server")
