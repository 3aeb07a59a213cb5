"""Hand-written texts behind the bundled xP3 sample (written here, not downloaded).

Kept apart from `make_sample.py` (which decides the layout, prompts and file names) so the
texts can be read and corrected by speakers without touching the generator. Every language has
the same kinds of material so that each cluster of the sample covers several languages:
`ARTICLES` (news passage, one-sentence summary, two extractive questions with answer spans),
`FLORES` (parallel sentences, Flores-200 codes), `REVIEWS` (text, 1-5 stars), `PARAPHRASES`
(PAWS-style sentence pairs with a yes/no label) and the English-only / code material.
"""

# language -> list of (passage, summary, [(question, answer span), ...]).
ARTICLES = {
    "en": [
        ("The city council approved a plan on Tuesday to plant 10,000 trees along the river over "
         "the next five years. Officials said the trees would reduce summer temperatures and help "
         "prevent flooding. Residents will be able to volunteer for planting days starting in "
         "April.",
         "The city council approved a five-year plan to plant 10,000 trees along the river.",
         [("How many trees will be planted?", "10,000"),
          ("When do the planting days start?", "in April")]),
        ("A team of researchers in Kenya has developed a low-cost sensor that warns farmers when "
         "the soil is too dry. The device sends a text message to the farmer's phone and costs "
         "less than twenty dollars. More than 300 farms tested it during the last dry season.",
         "Kenyan researchers built a cheap soil sensor that texts farmers when their fields need "
         "water.",
         [("What does the sensor send to the farmer's phone?", "a text message"),
          ("How many farms tested the device?", "More than 300")]),
        ("The national football team won the regional championship on Sunday after beating the "
         "defending champions 2-1. The winning goal was scored in the final minute by the team's "
         "youngest player, who is only nineteen. Thousands of fans celebrated in the streets of "
         "the capital.",
         "A last-minute goal by a nineteen-year-old gave the national team a 2-1 win and the "
         "regional title.",
         [("What was the final score?", "2-1"),
          ("How old is the player who scored the winning goal?", "nineteen")]),
    ],
    "fr": [
        ("Le musée d'histoire naturelle de Lyon rouvrira ses portes le 3 mai après deux ans de "
         "travaux. La nouvelle galerie présente plus de 500 fossiles, dont un squelette complet "
         "de mammouth. L'entrée sera gratuite pendant le premier week-end.",
         "Après deux ans de travaux, le musée d'histoire naturelle de Lyon rouvre le 3 mai avec "
         "une nouvelle galerie de fossiles.",
         [("Quand le musée rouvrira-t-il ?", "le 3 mai"),
          ("Combien de fossiles la nouvelle galerie présente-t-elle ?", "plus de 500")]),
        ("La ville de Nantes a lancé un service de vélos électriques en libre-service. Les "
         "habitants peuvent louer un vélo pour un euro la demi-heure grâce à une application "
         "mobile. La mairie espère réduire le trafic automobile de dix pour cent d'ici 2026.",
         "Nantes lance des vélos électriques en libre-service pour réduire le trafic automobile.",
         [("Combien coûte la location d'un vélo pour une demi-heure ?", "un euro"),
          ("De combien la mairie espère-t-elle réduire le trafic ?", "dix pour cent")]),
        ("Des chercheurs de l'université de Montpellier ont découvert une nouvelle espèce de "
         "grenouille dans les forêts de Guyane. L'animal mesure à peine deux centimètres et vit "
         "dans les feuilles mortes. Les scientifiques l'ont nommé en l'honneur d'un guide local.",
         "Une nouvelle espèce de minuscule grenouille a été découverte en Guyane par des "
         "chercheurs de Montpellier.",
         [("Où la grenouille a-t-elle été découverte ?", "dans les forêts de Guyane"),
          ("Quelle taille mesure l'animal ?", "à peine deux centimètres")]),
    ],
    "es": [
        ("El gobierno de Chile inauguró este lunes la mayor planta de energía solar del país en "
         "el desierto de Atacama. La planta producirá electricidad suficiente para 300.000 "
         "hogares. Su construcción duró tres años y empleó a más de mil trabajadores.",
         "Chile inauguró en el desierto de Atacama su mayor planta solar, capaz de abastecer a "
         "300.000 hogares.",
         [("¿Dónde está la planta solar?", "en el desierto de Atacama"),
          ("¿Cuántos hogares podrá abastecer?", "300.000")]),
        ("La biblioteca municipal de Sevilla ofrecerá clases gratuitas de informática para "
         "personas mayores a partir de octubre. Los cursos se impartirán dos veces por semana y "
         "enseñarán a usar el correo electrónico y las videollamadas. Las inscripciones ya están "
         "abiertas.",
         "La biblioteca de Sevilla dará clases gratuitas de informática a personas mayores desde "
         "octubre.",
         [("¿A quién van dirigidas las clases?", "personas mayores"),
          ("¿Cuántas veces por semana habrá clases?", "dos veces por semana")]),
        ("Un grupo de voluntarios recogió más de dos toneladas de plástico en una playa de "
         "Valencia durante el fin de semana. La mayoría de los residuos eran botellas y bolsas. "
         "Los organizadores pidieron a los bañistas que usen envases reutilizables.",
         "Voluntarios retiraron más de dos toneladas de plástico de una playa de Valencia.",
         [("¿Cuánto plástico recogieron los voluntarios?", "más de dos toneladas"),
          ("¿Qué tipo de residuos eran la mayoría?", "botellas y bolsas")]),
    ],
    "zh": [
        ("杭州市昨日宣布，将在未来三年内新建二十座公园。市政府表示，新公园将主要分布在人口密集的老城区。"
         "第一批公园预计明年春天对外开放。",
         "杭州计划三年内新建二十座公园，首批明年春天开放。",
         [("杭州将新建多少座公园？", "二十座"), ("第一批公园什么时候开放？", "明年春天")]),
        ("一家深圳科技公司发布了一款可以实时翻译十种语言的耳机。这款耳机售价为八百元，电池可以连续使用十二小时。"
         "公司表示，产品将首先在东南亚市场销售。",
         "深圳一家公司推出能实时翻译十种语言的耳机，售价八百元。",
         [("这款耳机可以翻译几种语言？", "十种"), ("耳机的售价是多少？", "八百元")]),
        ("今年夏天，云南省多地遭遇持续干旱，部分水库的蓄水量不足往年的一半。当地政府已组织车辆为山区村民运送饮用水。"
         "气象部门预计下周将迎来降雨。",
         "云南多地遭遇持续干旱，政府为山区村民运送饮用水。",
         [("哪个省份遭遇了干旱？", "云南省"), ("政府为村民运送什么？", "饮用水")]),
    ],
    "ar": [
        ("افتتحت وزارة التعليم في الأردن عشرين مدرسة جديدة في المناطق الريفية هذا الأسبوع. "
         "وتتسع كل مدرسة لنحو خمسمائة طالب. وقال الوزير إن المدارس مجهزة بمختبرات حاسوب حديثة.",
         "افتتحت وزارة التعليم الأردنية عشرين مدرسة جديدة في المناطق الريفية.",
         [("كم مدرسة جديدة افتتحت الوزارة؟", "عشرين مدرسة"),
          ("كم طالباً تتسع له كل مدرسة؟", "نحو خمسمائة طالب")]),
        ("أعلنت شركة طيران مغربية عن رحلات مباشرة جديدة بين الدار البيضاء وداكار ابتداءً من الشهر "
         "المقبل. وستكون الرحلات ثلاث مرات أسبوعياً. وتتوقع الشركة أن يزداد عدد المسافرين بين البلدين.",
         "شركة طيران مغربية تطلق رحلات مباشرة بين الدار البيضاء وداكار ثلاث مرات أسبوعياً.",
         [("بين أي مدينتين ستكون الرحلات الجديدة؟", "الدار البيضاء وداكار"),
          ("كم مرة في الأسبوع ستكون الرحلات؟", "ثلاث مرات")]),
        ("اكتشف علماء آثار في مصر مقبرة قديمة يعود تاريخها إلى أكثر من ثلاثة آلاف عام. وتحتوي "
         "المقبرة على نقوش ملونة وأوانٍ فخارية. وسيتم عرض بعض القطع في المتحف المصري الكبير.",
         "علماء آثار يكتشفون في مصر مقبرة عمرها أكثر من ثلاثة آلاف عام.",
         [("كم عمر المقبرة المكتشفة؟", "أكثر من ثلاثة آلاف عام"),
          ("أين سيتم عرض بعض القطع؟", "المتحف المصري الكبير")]),
    ],
    "hi": [
        ("राजस्थान सरकार ने गाँवों में सौर ऊर्जा से चलने वाले पानी के पंप लगाने की नई योजना शुरू की है। "
         "इस योजना के तहत किसानों को पंप की कीमत का साठ प्रतिशत अनुदान मिलेगा। "
         "पहले चरण में दस हज़ार पंप लगाए जाएँगे।",
         "राजस्थान सरकार किसानों को सौर पंपों पर साठ प्रतिशत अनुदान देगी।",
         [("किसानों को कितना अनुदान मिलेगा?", "साठ प्रतिशत"),
          ("पहले चरण में कितने पंप लगाए जाएँगे?", "दस हज़ार")]),
        ("दिल्ली मेट्रो ने एक नई लाइन खोली है जो हवाई अड्डे को शहर के दक्षिणी हिस्से से जोड़ती है। "
         "इस लाइन पर बारह स्टेशन हैं। अधिकारियों का कहना है कि इससे यात्रा का समय आधा हो जाएगा।",
         "दिल्ली मेट्रो की नई लाइन हवाई अड्डे को दक्षिणी दिल्ली से जोड़ती है।",
         [("नई लाइन पर कितने स्टेशन हैं?", "बारह"),
          ("यात्रा का समय कितना कम हो जाएगा?", "आधा")]),
        ("केरल में इस साल मानसून समय से एक सप्ताह पहले पहुँच गया। मौसम विभाग ने कई ज़िलों में भारी "
         "बारिश की चेतावनी जारी की है। मछुआरों को समुद्र में न जाने की सलाह दी गई है।",
         "केरल में मानसून जल्दी पहुँचा, कई ज़िलों में भारी बारिश की चेतावनी।",
         [("मानसून कितना पहले पहुँचा?", "एक सप्ताह"),
          ("मछुआरों को क्या सलाह दी गई है?", "समुद्र में न जाने की")]),
    ],
    "sw": [
        ("Serikali ya Tanzania imezindua mradi wa kusambaza umeme katika vijiji mia tano vya mkoa "
         "wa Dodoma. Mradi huo unatarajiwa kukamilika ndani ya miaka miwili. Wananchi wamesema "
         "umeme utasaidia biashara ndogo ndogo.",
         "Tanzania imezindua mradi wa kupeleka umeme katika vijiji mia tano vya Dodoma.",
         [("Mradi utasambaza umeme katika vijiji vingapi?", "mia tano"),
          ("Mradi unatarajiwa kukamilika lini?", "ndani ya miaka miwili")]),
        ("Timu ya taifa ya Kenya ya riadha ilishinda medali saba za dhahabu katika mashindano ya "
         "Afrika yaliyofanyika Nairobi. Mwanariadha mmoja alivunja rekodi ya mbio za mita elfu "
         "moja na mia tano. Mashabiki walijaa uwanjani kushangilia.",
         "Kenya ilishinda medali saba za dhahabu katika mashindano ya riadha ya Afrika jijini "
         "Nairobi.",
         [("Kenya ilishinda medali ngapi za dhahabu?", "saba"),
          ("Mashindano yalifanyika wapi?", "Nairobi")]),
        ("Wakulima wa kahawa katika mkoa wa Kilimanjaro wanasema mvua za mwaka huu zimeongeza "
         "mavuno. Bei ya kahawa pia imepanda sokoni. Chama cha ushirika kimeanza kununua kahawa "
         "kutoka kwa wakulima wiki hii.",
         "Mvua nzuri zimeongeza mavuno ya kahawa Kilimanjaro na bei imepanda.",
         [("Wakulima wa zao gani wametajwa?", "kahawa"),
          ("Nini kimeongeza mavuno?", "mvua za mwaka huu")]),
    ],
    "yo": [
        ("Ìjọba ìpínlẹ̀ Ọ̀yọ́ ti kéde pé àwọn yóò kọ́ ilé-ìwòsàn tuntun mẹ́wàá ní àwọn ìlú kékeré. "
         "Ọ̀kọ̀ọ̀kan ilé-ìwòsàn náà yóò ní yàrá ìbímọ. Gómìnà sọ pé iṣẹ́ náà yóò bẹ̀rẹ̀ lóṣù tó ń bọ̀.",
         "Ìjọba Ọ̀yọ́ yóò kọ́ ilé-ìwòsàn tuntun mẹ́wàá ní àwọn ìlú kékeré.",
         [("Ilé-ìwòsàn mélòó ni ìjọba yóò kọ́?", "mẹ́wàá"),
          ("Ìgbà wo ni iṣẹ́ náà yóò bẹ̀rẹ̀?", "lóṣù tó ń bọ̀")]),
        ("Àwọn akẹ́kọ̀ọ́ láti Yunifásítì Ìbàdàn gba ẹ̀bùn àkọ́kọ́ nínú ìdíje ìmọ̀ sáyẹ́ǹsì ní Èkó. "
         "Wọ́n ṣe ẹ̀rọ tó ń sọ omi ìdọ̀tí di mímọ́. Ẹ̀bùn náà jẹ́ mílíọ̀nù náírà márùn-ún.",
         "Akẹ́kọ̀ọ́ Yunifásítì Ìbàdàn gba ẹ̀bùn àkọ́kọ́ fún ẹ̀rọ tó ń sọ omi di mímọ́.",
         [("Kí ni àwọn akẹ́kọ̀ọ́ náà ṣe?", "ẹ̀rọ tó ń sọ omi ìdọ̀tí di mímọ́"),
          ("Èló ni ẹ̀bùn náà?", "mílíọ̀nù náírà márùn-ún")]),
        ("Ọjà Ọ̀jẹ̀ ní Ìbàdàn kún fọ́fọ́ lónìí bí àwọn ènìyàn ṣe ń ra nǹkan fún ọdún. Iye owó ìrẹsì "
         "àti epo pupa ti gòkè. Àwọn oníṣòwò sọ pé ọjà ń tà dáadáa.",
         "Ọjà Ọ̀jẹ̀ kún fún àwọn onírajà ṣáájú ọdún, iye owó oúnjẹ sì gòkè.",
         [("Ọjà wo ni a sọ̀rọ̀ nípa rẹ̀?", "Ọjà Ọ̀jẹ̀"),
          ("Kí ni iye owó rẹ̀ ti gòkè?", "ìrẹsì àti epo pupa")]),
    ],
}

# Flores-200 code -> eight parallel sentences (same order in every language).
FLORES = {
    "eng_Latn": [
        "The library opens at nine o'clock every morning.",
        "It rained heavily in the city yesterday.",
        "My sister is learning to play the guitar.",
        "Farmers need more water for their crops this year.",
        "The new bridge connects the two villages.",
        "Children should drink clean water every day.",
        "The doctor said the patient will recover soon.",
        "We visited the museum on Saturday afternoon.",
    ],
    "fra_Latn": [
        "La bibliothèque ouvre à neuf heures tous les matins.",
        "Il a beaucoup plu en ville hier.",
        "Ma sœur apprend à jouer de la guitare.",
        "Les agriculteurs ont besoin de plus d'eau pour leurs cultures cette année.",
        "Le nouveau pont relie les deux villages.",
        "Les enfants devraient boire de l'eau potable tous les jours.",
        "Le médecin a dit que le patient se rétablira bientôt.",
        "Nous avons visité le musée samedi après-midi.",
    ],
    "spa_Latn": [
        "La biblioteca abre a las nueve todas las mañanas.",
        "Ayer llovió mucho en la ciudad.",
        "Mi hermana está aprendiendo a tocar la guitarra.",
        "Los agricultores necesitan más agua para sus cultivos este año.",
        "El nuevo puente une los dos pueblos.",
        "Los niños deberían beber agua limpia todos los días.",
        "El médico dijo que el paciente se recuperará pronto.",
        "Visitamos el museo el sábado por la tarde.",
    ],
    "zho_Hans": [
        "图书馆每天早上九点开门。",
        "昨天城里下了大雨。",
        "我姐姐正在学弹吉他。",
        "今年农民需要更多的水来灌溉庄稼。",
        "新桥连接了两个村庄。",
        "孩子们每天都应该喝干净的水。",
        "医生说病人很快就会康复。",
        "我们星期六下午参观了博物馆。",
    ],
    "arb_Arab": [
        "تفتح المكتبة في الساعة التاسعة كل صباح.",
        "هطلت أمطار غزيرة في المدينة أمس.",
        "أختي تتعلم العزف على الغيتار.",
        "يحتاج المزارعون إلى مزيد من المياه لمحاصيلهم هذا العام.",
        "يربط الجسر الجديد بين القريتين.",
        "يجب أن يشرب الأطفال مياهاً نظيفة كل يوم.",
        "قال الطبيب إن المريض سيتعافى قريباً.",
        "زرنا المتحف بعد ظهر يوم السبت.",
    ],
    "hin_Deva": [
        "पुस्तकालय हर सुबह नौ बजे खुलता है।",
        "कल शहर में भारी बारिश हुई।",
        "मेरी बहन गिटार बजाना सीख रही है।",
        "इस साल किसानों को अपनी फसलों के लिए अधिक पानी की ज़रूरत है।",
        "नया पुल दोनों गाँवों को जोड़ता है।",
        "बच्चों को हर दिन साफ़ पानी पीना चाहिए।",
        "डॉक्टर ने कहा कि मरीज़ जल्द ही ठीक हो जाएगा।",
        "हम शनिवार दोपहर को संग्रहालय गए।",
    ],
    "swh_Latn": [
        "Maktaba hufunguliwa saa tatu kila asubuhi.",
        "Jana mvua kubwa ilinyesha mjini.",
        "Dada yangu anajifunza kupiga gitaa.",
        "Wakulima wanahitaji maji zaidi kwa mazao yao mwaka huu.",
        "Daraja jipya linaunganisha vijiji viwili.",
        "Watoto wanapaswa kunywa maji safi kila siku.",
        "Daktari alisema mgonjwa atapona hivi karibuni.",
        "Tulitembelea makumbusho Jumamosi mchana.",
    ],
    "yor_Latn": [
        "Ilé-ìkàwé máa ń ṣí ní agogo mẹ́sàn-án ní gbogbo òwúrọ̀.",
        "Òjò rọ̀ gidigidi ní ìlú lánàá.",
        "Ẹ̀gbọ́n mi obìnrin ń kọ́ bí a ṣe ń ta gìtá.",
        "Àwọn àgbẹ̀ nílò omi púpọ̀ sí i fún àwọn irè oko wọn lọ́dún yìí.",
        "Afárá tuntun so àwọn abúlé méjèèjì pọ̀.",
        "Ó yẹ kí àwọn ọmọdé máa mu omi mímọ́ lójoojúmọ́.",
        "Dókítà sọ pé ara aláìsàn náà yóò yá láìpẹ́.",
        "A ṣèbẹ̀wò sí ilé ìṣẹ̀ǹbáyé ní ọ̀sán ọjọ́ Sátidé.",
    ],
    # The first four sentences only, for the scripts the sample has no other text in.
    "ben_Beng": [
        "গ্রন্থাগারটি প্রতিদিন সকাল নয়টায় খোলে।",
        "গতকাল শহরে প্রচুর বৃষ্টি হয়েছে।",
        "আমার বোন গিটার বাজাতে শিখছে।",
        "এ বছর কৃষকদের ফসলের জন্য আরও বেশি পানি দরকার।",
    ],
    "tel_Telu": [
        "గ్రంథాలయం ప్రతి రోజు ఉదయం తొమ్మిది గంటలకు తెరుచుకుంటుంది.",
        "నిన్న నగరంలో భారీ వర్షం కురిసింది.",
        "మా అక్క గిటార్ వాయించడం నేర్చుకుంటోంది.",
        "ఈ సంవత్సరం రైతులకు తమ పంటల కోసం ఎక్కువ నీరు అవసరం.",
    ],
    "tam_Taml": [
        "நூலகம் தினமும் காலை ஒன்பது மணிக்குத் திறக்கும்.",
        "நேற்று நகரில் கனமழை பெய்தது.",
        "என் சகோதரி கிட்டார் வாசிக்கக் கற்றுக்கொள்கிறாள்.",
        "இந்த ஆண்டு விவசாயிகளுக்கு தங்கள் பயிர்களுக்கு அதிக தண்ணீர் தேவை.",
    ],
    "urd_Arab": [
        "کتب خانہ ہر صبح نو بجے کھلتا ہے۔",
        "کل شہر میں زوردار بارش ہوئی۔",
        "میری بہن گٹار بجانا سیکھ رہی ہے۔",
        "اس سال کسانوں کو اپنی فصلوں کے لیے زیادہ پانی کی ضرورت ہے۔",
    ],
    "kan_Knda": [
        "ಗ್ರಂಥಾಲಯವು ಪ್ರತಿದಿನ ಬೆಳಿಗ್ಗೆ ಒಂಬತ್ತು ಗಂಟೆಗೆ ತೆರೆಯುತ್ತದೆ.",
        "ನಿನ್ನೆ ನಗರದಲ್ಲಿ ಭಾರೀ ಮಳೆಯಾಯಿತು.",
        "ನನ್ನ ತಂಗಿ ಗಿಟಾರ್ ನುಡಿಸಲು ಕಲಿಯುತ್ತಿದ್ದಾಳೆ.",
        "ಈ ವರ್ಷ ರೈತರಿಗೆ ತಮ್ಮ ಬೆಳೆಗಳಿಗೆ ಹೆಚ್ಚು ನೀರು ಬೇಕು.",
    ],
}

# Flores code -> (xP3 language folder, English name of the language).
FLORES_LANGUAGES = {
    "eng_Latn": ("en", "English"), "fra_Latn": ("fr", "French"), "spa_Latn": ("es", "Spanish"),
    "zho_Hans": ("zh", "Chinese"), "arb_Arab": ("ar", "Arabic"), "hin_Deva": ("hi", "Hindi"),
    "swh_Latn": ("sw", "Swahili"), "yor_Latn": ("yo", "Yoruba"), "ben_Beng": ("bn", "Bengali"),
    "tel_Telu": ("te", "Telugu"), "tam_Taml": ("ta", "Tamil"), "urd_Arab": ("ur", "Urdu"),
    "kan_Knda": ("kn", "Kannada"),
}

# Traditional-Chinese news (XL-Sum chinese_traditional): (passage, one-sentence summary).
ZH_HANT_ARTICLES = [
    ("市議會週二批准一項計畫，將在未來五年內沿河種植一萬棵樹。官員表示，這些樹木可以降低夏季氣溫，"
     "並有助於防止水災。居民從四月起可以報名參加植樹活動。",
     "市議會批准五年計畫，沿河種植一萬棵樹。"),
    ("肯亞的研究人員開發出一種低成本的土壤感測器，在土壤過乾時提醒農民。這個裝置會發送簡訊到農民的"
     "手機，價格不到二十美元。",
     "肯亞研究人員研發廉價土壤感測器，以簡訊提醒農民灌溉。"),
]

# WikiBio-style: (name, bullet facts, short biography).
WIKI_BIO = [
    ("Amina Njoroge", "- name: Amina Njoroge\n- birth_date: 12 March 1968\n- birth_place: Nyeri, "
     "Kenya\n- occupation: agronomist\n- known_for: drought-resistant maize varieties",
     "Amina Njoroge (born 12 March 1968) is a Kenyan agronomist from Nyeri, known for breeding "
     "drought-resistant varieties of maize."),
    ("Tomás Ferreira", "- name: Tomás Ferreira\n- birth_date: 3 June 1951\n- death_date: 9 "
     "January 2019\n- nationality: Portuguese\n- occupation: architect, painter",
     "Tomás Ferreira (3 June 1951 – 9 January 2019) was a Portuguese architect and painter."),
]

# XCOPA (zh): (premise, choice 1, choice 2, question, label); a held-out evaluation dataset.
XCOPA_ZH = [
    ("孩子哭了起来。", "他摔倒了。", "他得到了一块糖。", "cause", 0),
    ("我打开了窗户。", "冷风吹进了房间。", "房间变得更热了。", "effect", 0),
    ("草地湿了。", "太阳很大。", "昨晚下雨了。", "cause", 1),
]

# language -> list of (review text, stars 1-5).
REVIEWS = {
    "en": [
        ("The kettle boils quickly and the handle stays cool. Very happy with it.", 5),
        ("Stopped working after two weeks. The seller never answered my emails.", 1),
        ("Decent headphones for the price, but the cable is too short.", 3),
        ("Comfortable shoes, although the colour is darker than in the photos.", 4),
    ],
}

# language -> list of (sentence 1, sentence 2, is paraphrase).
PARAPHRASES = {
    "fr": [
        ("Le pont a été construit en 1892 par un ingénieur belge.",
         "Un ingénieur belge a construit le pont en 1892.", True),
        ("Marie est née à Lyon et a grandi à Marseille.",
         "Marie est née à Marseille et a grandi à Lyon.", False),
        ("Le club a remporté le championnat deux années de suite.",
         "Le club a gagné le championnat deux fois consécutivement.", True),
        ("La rivière coule du nord vers le sud de la région.",
         "La rivière coule du sud vers le nord de la région.", False),
    ],
    "es": [
        ("La iglesia fue restaurada en 1950 por los vecinos del pueblo.",
         "Los vecinos del pueblo restauraron la iglesia en 1950.", True),
        ("Juan vendió su coche a Pedro el año pasado.",
         "Pedro vendió su coche a Juan el año pasado.", False),
        ("El río atraviesa la ciudad antes de llegar al mar.",
         "Antes de desembocar en el mar, el río cruza la ciudad.", True),
        ("La novela se publicó primero en Argentina y después en México.",
         "La novela se publicó primero en México y después en Argentina.", False),
    ],
    "zh": [
        ("这座寺庙建于明朝，后来在清朝得到重修。", "这座寺庙在明朝建成，清朝时又被重修。", True),
        ("他出生在上海，后来搬到了北京。", "他出生在北京，后来搬到了上海。", False),
        ("该球队连续两年获得联赛冠军。", "这支球队两年来连续夺得联赛冠军。", True),
        ("公司总部从广州迁到了深圳。", "公司总部从深圳迁到了广州。", False),
    ],
}

# AG News (title + description, label).
AG_NEWS = [
    ("Oil prices climb as supply worries grow", "Crude futures rose for a third day on concerns "
     "about output cuts by major producers.", "Business"),
    ("Striker's late goal sends United into the final", "A header in stoppage time settled a tense "
     "semi-final at the national stadium.", "Sports"),
    ("Leaders meet to discuss border agreement", "Foreign ministers from both countries gathered "
     "in Geneva for a second round of talks.", "World"),
    ("New chip promises longer battery life for phones", "The processor uses a smaller "
     "manufacturing process and cuts power use by a third.", "Science and technology"),
    ("Retailer reports record holiday sales", "Online orders doubled compared with last year, the "
     "company said on Thursday.", "Business"),
    ("Space agency delays launch of weather satellite", "Engineers found a problem with a fuel "
     "valve during final checks.", "Science and technology"),
    ("Champion withdraws from tournament with injury", "The top seed pulled out hours before her "
     "opening match because of a wrist problem.", "Sports"),
    ("Floods force thousands from their homes", "Heavy monsoon rain has submerged villages across "
     "the delta region.", "World"),
]

TRIVIA = [
    ("Which planet is known as the Red Planet?", "Mars"),
    ("What is the capital city of Kenya?", "Nairobi"),
    ("Who wrote the novel 'Things Fall Apart'?", "Chinua Achebe"),
    ("How many sides does a hexagon have?", "Six"),
    ("Which ocean lies between Africa and Australia?", "The Indian Ocean"),
    ("What is the chemical symbol for gold?", "Au"),
]

PIQA = [
    ("To keep bread fresh for longer,", "store it in a sealed bag at room temperature.",
     "store it in an open bowl next to the oven.", 0),
    ("How do you loosen a tight jar lid?", "Run the lid under cold water for a minute.",
     "Run the lid under hot water for a minute.", 1),
    ("To clean a whiteboard without spray,", "wipe it with a dry cloth and a little rubbing "
     "alcohol.", "wipe it with a cloth dipped in cooking oil.", 0),
    ("How can you make ice cubes freeze faster?", "Use a thick glass bowl and fill it to the top.",
     "Use a thin metal tray and fill it halfway.", 1),
]

WIC = [
    ("bank", "He sat on the bank of the river.", "She deposited the money at the bank.", False),
    ("light", "Turn off the light when you leave.", "The light from the window woke me up.", True),
    ("run", "I run every morning before work.", "She will run the company next year.", False),
    ("bright", "The room is bright in the afternoon.", "The sun is very bright today.", True),
]

MRPC = [
    ("The company said profits rose 12 percent in the second quarter.",
     "Second-quarter profits increased by 12 percent, the company said.", True),
    ("The storm knocked out power to 40,000 homes on Monday.",
     "Officials expect the storm to reach the coast by Wednesday.", False),
    ("The minister resigned after the report was published.",
     "Following the report's publication, the minister stepped down.", True),
    ("Shares of the airline fell 3 percent in early trading.",
     "The airline announced three new routes to Asia.", False),
]

IMDB = [
    ("A warm, funny film with a wonderful lead performance. I laughed and cried.", "positive"),
    ("The plot makes no sense and the dialogue is painfully slow. Two hours I will not get "
     "back.", "negative"),
    ("Beautifully shot, and the soundtrack is unforgettable.", "positive"),
    ("Even the great cast cannot save this lazy, predictable sequel.", "negative"),
]

# CLUE TNEWS (headline, category in Chinese).
TNEWS = [
    ("国足主帅公布世预赛名单，三名新人入选", "体育"),
    ("央行宣布下调存款准备金率0.5个百分点", "财经"),
    ("国产大飞机完成首次商业载客飞行", "科技"),
    ("暑期档电影票房突破两百亿元", "娱乐"),
    ("教育部：中小学每天体育活动不少于两小时", "教育"),
    ("国庆假期热门旅游城市酒店预订量大增", "旅游"),
]

# MBPP-style problems: (description, test, solution). Solutions keep their indentation.
MBPP = [
    ("Write a function to find the largest of three numbers.",
     "assert max_of_three(3, 9, 4) == 9",
     "def max_of_three(a, b, c):\n    return max(a, max(b, c))"),
    ("Write a python function to count the vowels in a string.",
     "assert count_vowels('programming') == 3",
     "def count_vowels(s):\n    return sum(1 for ch in s.lower() if ch in 'aeiou')"),
    ("Write a function to reverse the words of a sentence.",
     "assert reverse_words('hello big world') == 'world big hello'",
     "def reverse_words(sentence):\n    return ' '.join(reversed(sentence.split()))"),
    ("Write a function to check whether a number is a palindrome.",
     "assert is_palindrome(12321) == True",
     "def is_palindrome(n):\n    s = str(n)\n    return s == s[::-1]"),
    ("Write a function to compute the factorial of n.",
     "assert factorial(5) == 120",
     "def factorial(n):\n    result = 1\n    for i in range(2, n + 1):\n        result *= i\n"
     "    return result"),
    ("Write a function to remove duplicates from a list while keeping the order.",
     "assert dedupe([3, 1, 3, 2, 1]) == [3, 1, 2]",
     "def dedupe(items):\n    seen = set()\n    out = []\n    for x in items:\n"
     "        if x not in seen:\n            seen.add(x)\n            out.append(x)\n"
     "    return out"),
]

# XLCoST-style text-to-code: (description, language, program).
XLCOST = [
    ("Sum of the digits of a number", "Python",
     "def digit_sum(n):\n    total = 0\n    while n > 0:\n        total += n % 10\n"
     "        n //= 10\n    return total\n\nprint(digit_sum(1234))"),
    ("Check if a year is a leap year", "Java",
     "public class Main {\n    static boolean isLeap(int y) {\n"
     "        return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;\n    }\n"
     "    public static void main(String[] args) {\n        System.out.println(isLeap(2024));\n"
     "    }\n}"),
    ("Print the first n Fibonacci numbers", "C++",
     "#include <iostream>\nint main() {\n    int n = 10, a = 0, b = 1;\n"
     "    for (int i = 0; i < n; i++) {\n        std::cout << a << \" \";\n"
     "        int t = a + b; a = b; b = t;\n    }\n    return 0;\n}"),
]

# APPS-style competitive programming: (statement, solution).
APPS = [
    ("You are given an integer n. Print the sum of all even numbers from 1 to n inclusive.\n\n"
     "-----Input-----\nA single integer n (1 <= n <= 10^9).\n\n-----Output-----\nPrint one "
     "integer.",
     "n = int(input())\nk = n // 2\nprint(k * (k + 1))"),
    ("Given a string s, print YES if it reads the same forwards and backwards, otherwise NO.\n\n"
     "-----Input-----\nOne line with the string s (1 <= |s| <= 100).\n\n-----Output-----\nYES or "
     "NO.",
     "s = input().strip()\nprint('YES' if s == s[::-1] else 'NO')"),
]
